"""Pseudonymous student keys: how the ML team tells students apart without knowing who they are."""

from django.conf import settings
from django.utils.crypto import salted_hmac

KEY_SALT = "tutor_platform.pseudonyms.student_key"


def student_key(user_id: int | None) -> str | None:
    """A stable, opaque key for a student, None once they were erased.

    An HMAC of the user id under `STUDENT_KEY_SECRET`: the same student
    always gets the same key, and without the secret nobody can link a key
    to a user id or an email.
    """
    if user_id is None:
        return None
    digest = salted_hmac(KEY_SALT, str(user_id), secret=settings.STUDENT_KEY_SECRET, algorithm="sha256")
    return "s_" + digest.hexdigest()[:24]


class NoLookupsByStudent:
    """A ModelAdmin mixin for the screens the ML team reads: no filter in the
    URL may go through the student (`?user__id__exact=7`,
    `?chat__user__email=...`), which would map user ids or emails to the
    pseudonymous keys shown there. Superusers, who manage accounts, may."""

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        if "user" in lookup.split("__") and not (request is not None and request.user.is_superuser):
            return False
        return super().lookup_allowed(lookup, value, request)
