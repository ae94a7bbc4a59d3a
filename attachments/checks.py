"""`check --deploy`: what a production deployment of attachments needs."""

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def attachments_reachable(app_configs: Any, **kwargs: Any) -> list[Warning]:
    problems = []
    if not settings.BACKEND_URL.startswith(("http://", "https://")):
        problems.append(
            Warning(
                "BACKEND_URL is not set: AI-Core is sent attachment links without a host, and cannot "
                "fetch the photos students attach.",
                hint="Set BACKEND_URL to this backend's base URL as AI-Core reaches it.",
                id="attachments.W001",
            )
        )
    return problems
