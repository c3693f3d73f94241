"""The Batch jobs page, a job's live progress, cancel, and result downloads."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from batches import exports
from batches.forms import BatchJobForm
from batches.jobs import JobRefused, create_job, progress, request_cancel
from batches.models import BatchJob, job_for_user
from billing.budgets import BudgetExceeded
from chatsite.ratelimit import ratelimit
from conversations.throttle import RateLimited

JOBS_PER_PAGE = 20


def _list_context(request, form: BatchJobForm) -> dict:
    jobs = BatchJob.objects.for_user(request.user).recent()
    return {"form": form, "jobs": Paginator(jobs, JOBS_PER_PAGE).get_page(request.GET.get("page"))}


@require_GET
@login_required
def batch_list(request) -> HttpResponse:
    """The user's batch jobs and the form to upload a new one."""
    return TemplateResponse(request, "batches/list.html", _list_context(request, BatchJobForm()))


@require_POST
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def batch_create(request) -> HttpResponse:
    """Validate the upload, check limits and budget, store the job and hand it to the worker."""
    form = BatchJobForm(request.POST, request.FILES)
    if form.is_valid():
        name, rows = form.cleaned_data["file"]
        try:
            job = create_job(
                user=request.user,
                name=name,
                rows=rows,
                model=form.cleaned_data["model"],
                system_prompt=form.cleaned_data["system_prompt"],
                max_tokens=form.cleaned_data["max_tokens"],
                mode=form.cleaned_data["mode"],
            )
        except (JobRefused, RateLimited, BudgetExceeded) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("batch_detail", job_id=job.pk)
    response = TemplateResponse(request, "batches/list.html", _list_context(request, form))
    response.status_code = 400
    return response


@require_GET
@login_required
def batch_detail(request, job_id: int) -> HttpResponse:
    """A job with its progress; htmx polls the #progress fragment until the job ends."""
    job = job_for_user(request.user, job_id)
    template = "batches/detail.html"
    if request.htmx:
        template += "#progress"
    context = {
        "job": job,
        "progress": progress(job),
        "provider_batches": list(job.provider_batches.all()),
    }
    return TemplateResponse(request, template, context)


@require_POST
@login_required
def batch_cancel(request, job_id: int) -> HttpResponse:
    """Cancel the job: what was not answered yet is cancelled and its budget hold released."""
    job = job_for_user(request.user, job_id)
    request_cancel(job)
    return redirect("batch_detail", job_id=job.pk)


def _download(job: BatchJob, body, *, suffix: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        True, f"batch-{job.pk}-results.{suffix}"
    )
    return response


@require_GET
@login_required
def batch_results_jsonl(request, job_id: int) -> StreamingHttpResponse:
    """One JSON object per row of the file, in its order."""
    job = job_for_user(request.user, job_id)
    return _download(
        job, exports.as_jsonl(job), suffix="jsonl", content_type="application/jsonl; charset=utf-8"
    )


@require_GET
@login_required
def batch_results_csv(request, job_id: int) -> StreamingHttpResponse:
    """One CSV line per row of the file, in its order."""
    job = job_for_user(request.user, job_id)
    return _download(job, exports.as_csv(job), suffix="csv", content_type="text/csv; charset=utf-8")
