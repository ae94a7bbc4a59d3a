"""Token pairs, and the API's authentication (simplejwt's, subclassed).

Every token says whether its user was staff when it was issued (`is_staff`).
The catalogue (GET /courses/, /tutors/) shows staff more than anyone else,
so it must know whether a token holder is staff; everything else it shows is
public. A token that says `"is_staff": false` is therefore believed there
without loading its user (a database query, half the CPU of a catalogue
read): at worst a student promoted since sees the public catalogue until
the access token is renewed (JWT_ACCESS_MINUTES). A token that says true,
or says nothing (issued before the claim existed), is checked against the
database as everywhere else, so a staff member demoted since sees only
what students see. Likewise a student deactivated (or erased) since still
reads the public catalogue with an unexpired access token. Every other
endpoint loads the user, and refuses such a token, as before.

A chat's own URLs (/chats/<id>/...) load the user too, but in the query
that loads the chat (`BearerAuthentication(user_loaded_by_view=True)`):
one query instead of two on every send and message page, with simplejwt's
checks of the user applied all the same before the view uses the chat.

Elsewhere the user is loaded by a prepared query (tutor_platform.prepared),
not compiled again on every request, and put through the same checks; a
user it does not find or that fails them is left to simplejwt, which
answers its own 401.
"""

import re

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from tutor_platform.prepared import Prepared
from tutor_platform.serving import ID_PATTERN

from .models import User

STAFF_CLAIM = "is_staff"

_ID = re.compile(ID_PATTERN)
_USER = Prepared(lambda user_id: User.objects.filter(pk=user_id)[:1])


def token_pair(user: User) -> dict[str, str]:
    """A new refresh token and its access token, each with the staff claim."""
    refresh = RefreshToken.for_user(user)
    refresh[STAFF_CLAIM] = user.is_staff  # the access token copies it
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


class CatalogueAuthentication(JWTAuthentication):
    """JWT authentication that believes a token's `"is_staff": false` (see
    above). The catalogue is public: a bad or expired token reads it as
    anonymous (the public fields) instead of a 401."""

    def authenticate(self, request: Request) -> tuple[User | TokenUser, Token] | None:
        try:
            return super().authenticate(request)
        except AuthenticationFailed:  # InvalidToken too: an expired token, a deleted user
            return None

    def get_user(self, validated_token: Token) -> User | TokenUser:
        if validated_token.get(STAFF_CLAIM) is False and api_settings.USER_ID_CLAIM in validated_token:
            return TokenUser(validated_token)  # its is_staff reads the claim: False
        return super().get_user(validated_token)


class BearerAuthentication(JWTAuthentication):
    """simplejwt's authentication, the API's default. A view may leave the
    user to itself (`BearerAuthentication(user_loaded_by_view=True)`, as
    chats.views.ChatViewSet on a chat's own URL): it loads the user joined
    to the object it reads and hands it to `verify`. Until then
    `request.user` is the token's `TokenUser`, whose id is all the
    permission and throttle checks may use; nothing else is believed.
    """

    def __init__(self, *, user_loaded_by_view: bool = False) -> None:
        super().__init__()
        self.user_loaded_by_view = user_loaded_by_view

    def get_user(self, validated_token: Token) -> User | TokenUser:
        if self.user_loaded_by_view:
            return TokenUser(validated_token)
        user_id = str(validated_token.get(api_settings.USER_ID_CLAIM))  # simplejwt writes a string
        user = _USER.first(user_id=int(user_id)) if _ID.fullmatch(user_id) else None
        return self.verify(validated_token, user)

    def verify(self, validated_token: Token, user: User | None) -> User:
        """The token's user as simplejwt accepts it: `user` (loaded by the
        view; None when it found none) when it passes the checks simplejwt
        makes, else whatever simplejwt itself decides, from its own query:
        401 (deleted, inactive, password changed), or the user when it
        changed meanwhile."""
        if user is not None and self._passes(validated_token, user):
            return user
        return JWTAuthentication.get_user(self, validated_token)

    @staticmethod
    def _passes(token: Token, user: User) -> bool:
        """simplejwt's checks (JWTAuthentication.get_user), on a user loaded elsewhere."""
        own = str(getattr(user, api_settings.USER_ID_FIELD)) == str(token[api_settings.USER_ID_CLAIM])
        active = user.is_active or not api_settings.CHECK_USER_IS_ACTIVE
        hashed = get_md5_hash_password(user.password)
        current = not api_settings.CHECK_REVOKE_TOKEN or token.get(api_settings.REVOKE_TOKEN_CLAIM) == hashed
        return own and active and current
