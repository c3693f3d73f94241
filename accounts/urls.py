from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views
from chatsite.ratelimit import ratelimit

login_view = ratelimit("RATE_LIMIT_LOGIN", key="ip", methods=["POST"])(
    auth_views.LoginView.as_view()
)

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("ai-notice/dismiss/", views.dismiss_ai_notice, name="dismiss_ai_notice"),
    path("login/", login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/data.json", views.account_data, name="account_data"),
    path("profile/delete/", views.account_delete, name="account_delete"),
]
