"""Account forms."""

from django.contrib.auth.forms import UserCreationForm

from accounts.models import User


class SignupForm(UserCreationForm):
    """Create a user with a username, optional email and password."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")
