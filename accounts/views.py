"""Sign-up, the AI notice, the profile with the person's own data; log in and out come from
django.contrib.auth."""

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.data import delete_account, user_data
from accounts.forms import DeleteAccountForm, SignupForm
from chatsite.ratelimit import ratelimit


@require_http_methods(["GET", "POST"])
@ratelimit("RATE_LIMIT_SIGNUP", key="ip", methods=["POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Show the sign-up form and log the new user in."""
    if not settings.SIGNUP_ENABLED:
        raise Http404("Sign-up is switched off.")
    if request.user.is_authenticated:
        return redirect("conversation_list")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("conversation_list")
    return render(request, "accounts/signup.html", {"form": form})


@require_POST
@login_required
def dismiss_ai_notice(request: HttpRequest) -> HttpResponse:
    """Hide the AI disclosure notice for good; htmx removes it in place."""
    request.user.dismiss_ai_notice()
    if getattr(request, "htmx", False):
        return HttpResponse("")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = "/"
    return redirect(next_url)


@require_GET
@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Your account: download all your data, or delete the account."""
    return TemplateResponse(
        request, "accounts/profile.html", {"delete_form": DeleteAccountForm(request.user)}
    )


@require_GET
@login_required
@ratelimit("RATE_LIMIT_COSTLY")
def account_data(request: HttpRequest) -> HttpResponse:
    """Download everything we hold about you as one JSON file."""
    response = JsonResponse(
        user_data(request.user), json_dumps_params={"ensure_ascii": False, "indent": 2}
    )
    filename = f"chatsite-{request.user.get_username()}-{timezone.now():%Y%m%d}.json"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


@require_POST
@login_required
@ratelimit("RATE_LIMIT_LOGIN")  # the password check must not become a guessing oracle
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete your account and everything in it, after confirming your password."""
    form = DeleteAccountForm(request.user, request.POST)
    if not form.is_valid():
        return TemplateResponse(request, "accounts/profile.html", {"delete_form": form}, status=400)
    delete_account(request.user)
    logout(request)
    return TemplateResponse(request, "accounts/deleted.html")
