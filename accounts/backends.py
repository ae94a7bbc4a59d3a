from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from .models import User


class EmailOrUsernameBackend(ModelBackend):
    """Authenticates by email or by username, both case-insensitively."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        identifier = username or kwargs.get("email")
        if not identifier or password is None:
            return None
        lookup = {"email__iexact": identifier} if "@" in identifier else {"username__iexact": identifier}
        user = User.objects.filter(**lookup).first()
        if user is None:
            # Spend the same time as a real check, so timing reveals no accounts.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
