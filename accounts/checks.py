"""`check --deploy`: the secrets every app server must share, as fingerprints.

Two hosts with different `SECRET_KEY`, `JWT_SIGNING_KEY` or
`STUDENT_KEY_SECRET` reject each other's tokens (or give the ML team two
keys per student). Each secret is shown as an HMAC of a fixed text under it:
equal fingerprints, equal secrets; nothing of the secret can be read back.
"""

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.core.checks import Info, Tags, register

FINGERPRINTED = {
    "SECRET_KEY": lambda: settings.SECRET_KEY,
    "JWT_SIGNING_KEY": lambda: settings.SIMPLE_JWT["SIGNING_KEY"],
    "STUDENT_KEY_SECRET": lambda: settings.STUDENT_KEY_SECRET,
}


def fingerprint(secret: str) -> str:
    return hmac.new(secret.encode(), b"tutor-platform secret fingerprint", hashlib.sha256).hexdigest()[:16]


@register(Tags.security, deploy=True)
def shared_secrets(app_configs: Any, **kwargs: Any) -> list[Info]:
    return [
        Info(
            f"{name} fingerprint {fingerprint(read())}",
            hint="Every app server must show the same fingerprint.",
            id=f"accounts.I00{index}",
        )
        for index, (name, read) in enumerate(FINGERPRINTED.items(), start=1)
    ]
