"""Token pairs, and the authentication of the public catalogue.

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
"""

from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken, Token

from .models import User

STAFF_CLAIM = "is_staff"


def token_pair(user: User) -> dict[str, str]:
    """A new refresh token and its access token, each with the staff claim."""
    refresh = RefreshToken.for_user(user)
    refresh[STAFF_CLAIM] = user.is_staff  # the access token copies it
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


class CatalogueAuthentication(JWTAuthentication):
    """JWT authentication that believes a token's `"is_staff": false` (see above)."""

    def get_user(self, validated_token: Token) -> User | TokenUser:
        if validated_token.get(STAFF_CLAIM) is False and api_settings.USER_ID_CLAIM in validated_token:
            return TokenUser(validated_token)  # its is_staff reads the claim: False
        return super().get_user(validated_token)
