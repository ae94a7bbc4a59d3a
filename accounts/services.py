"""Writes for accounts: registration, profile, passwords, tokens, preferences.

Erasing an account reads every app: privacy.services.user_erase."""

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, update_last_login
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from .models import User, normalize_email
from .roles import ROLE_GROUPS, Role
from .serializers import validate_preferences
from .tokens import token_pair


def _raise_duplicate(email: str, username: str) -> None:
    """Turns a unique-constraint race into the same 400 the serializer gives."""
    errors = {}
    if User.objects.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    if User.objects.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    raise serializers.ValidationError(errors or {"non_field_errors": ["Duplicate user."]})


def user_register(
    *, email: str, username: str, password: str, full_name: str = "", allow_training: bool = False
) -> User:
    email = normalize_email(email)
    try:
        with transaction.atomic():
            return User.objects.create_user(
                email=email,
                username=username,
                password=password,
                full_name=full_name,
                allow_training=allow_training,
            )
    except IntegrityError:
        _raise_duplicate(email, username)
        raise


PROFILE_FIELDS = (
    "full_name",
    "username",
    "allow_training",
    # The learner context (ProfileSerializer's `learner`).
    "learner_grade",
    "learner_level",
    "learner_language",
    "learner_goals",
)


def user_update(*, user: User, data: dict[str, Any]) -> User:
    changed = [field for field in PROFILE_FIELDS if field in data]
    for field in changed:
        setattr(user, field, data[field])
    if data.get("allow_training") and user.consent_revoked_at is not None:  # consent given again
        user.consent_revoked_at = None
        changed.append("consent_revoked_at")
    try:
        with transaction.atomic():
            user.save(update_fields=[*changed, "updated_at"])
    except IntegrityError:
        raise serializers.ValidationError(
            {"username": ["A user with that username already exists."]}
        ) from None
    return user


def auth_login(*, request: HttpRequest, identifier: str, password: str) -> dict[str, str]:
    user = authenticate(request, username=identifier, password=password)
    if user is None:
        raise AuthenticationFailed(
            "No active account found with the given credentials.", code="invalid_credentials"
        )
    update_last_login(User, user)
    return token_pair(user)


def _refresh_token_from(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]  # simplejwt's stubs say Token; it parses a string
    except TokenError as exc:
        raise InvalidToken(str(exc)) from exc


def _lock_user(user_id: Any) -> User | None:
    """Locks the user's row: refreshing and changing the password both take
    this lock first, so they run one after the other and cannot deadlock.

    FOR NO KEY UPDATE, so logins and other inserts that merely reference
    the user (new tokens) do not wait for it. Call inside a transaction.
    """
    return User.objects.select_for_update(no_key=True).filter(pk=user_id).first()


def auth_refresh(*, raw_refresh: str) -> dict[str, str]:
    """Rotates a refresh token: the old one is blacklisted, a new pair issued.

    Under the user's lock: two tabs refreshing with the same token at once get
    one new pair and one 401, and a refresh racing a password change either
    finishes before it (and its new token dies with the change) or sees the
    new password and fails. A token carries a hash of the password it was
    issued under, so a password set any other way (the admin, `changepassword`)
    kills every refresh token too.
    """
    refresh = _refresh_token_from(raw_refresh)
    with transaction.atomic():
        user = _lock_user(refresh.get(jwt_settings.USER_ID_CLAIM))
        outstanding = (
            OutstandingToken.objects.select_for_update().filter(jti=refresh["jti"]).order_by().first()
        )
        if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
            raise InvalidToken("Token is blacklisted")
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                "No active account found for the given token.", code="no_active_account"
            )
        if refresh.get(jwt_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise InvalidToken("The password changed after this token was issued.")
        BlacklistedToken.objects.create(token=outstanding)
        return token_pair(user)


def auth_logout(*, raw_refresh: str) -> None:
    refresh = _refresh_token_from(raw_refresh)
    refresh.blacklist()


def _blacklist_all_refresh_tokens(user: User) -> None:
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )


def user_change_password(*, user: User, new_password: str) -> None:
    """Sets the password and kills every token issued before.

    Refresh tokens are blacklisted; access tokens carry a hash of the old
    password (simplejwt's CHECK_REVOKE_TOKEN) and so stop authenticating.
    """
    with transaction.atomic():
        _lock_user(user.pk)
        user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        _blacklist_all_refresh_tokens(user)


def user_preferences_set(*, user: User, data: Any, merge: bool) -> dict[str, Any]:
    """PUT replaces the object; PATCH merges top-level keys, `null` removes one."""
    validate_preferences(data)
    with transaction.atomic():
        locked = User.objects.select_for_update().only("preferences").get(pk=user.pk)
        if merge:
            preferences = {**locked.preferences, **data}
            preferences = {k: v for k, v in preferences.items() if v is not None}
        else:
            preferences = data
        validate_preferences(preferences)
        User.objects.filter(pk=user.pk).update(preferences=preferences, updated_at=timezone.now())
    user.preferences = preferences
    return preferences


def user_set_role(*, user: User, role: str) -> None:
    """Staff flag, superuser flag and group, as the role says."""
    with transaction.atomic():
        user.is_staff = role != Role.STUDENT
        user.is_superuser = role == Role.SUPERUSER
        user.save(update_fields=["is_staff", "is_superuser", "updated_at"])
        group_name = ROLE_GROUPS.get(Role(role))
        user.groups.set([Group.objects.get(name=group_name)] if group_name else [])
