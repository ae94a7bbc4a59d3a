"""`check --deploy`: in production somebody must hear about the serious flags."""

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

NOWHERE = (
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
)


@register(Tags.security, deploy=True)
def safety_alerts_reach_someone(app_configs: Any, **kwargs: Any) -> list[Warning]:
    problems = []
    if not settings.SAFETY_ALERT_EMAILS:
        problems.append(
            Warning(
                "SAFETY_ALERT_EMAILS is empty: nobody is emailed when a student writes about "
                "self-harm or a sexual message is refused.",
                hint="Set SAFETY_ALERT_EMAILS to the school's safeguarding address(es).",
                id="safety.W001",
            )
        )
    if settings.EMAIL_BACKEND in NOWHERE:
        problems.append(
            Warning(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}: safety alerts are not sent.",
                hint="Set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.",
                id="safety.W002",
            )
        )
    return problems
