"""Sign-up and the AI notice; log in and out come from django.contrib.auth."""

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import SignupForm


@require_http_methods(["GET", "POST"])
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
