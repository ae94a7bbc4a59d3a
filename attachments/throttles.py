from typing import Any

from tutor_platform.throttling import AtomicRateThrottle


class UploadThrottle(AtomicRateThrottle):
    """Uploads per user (THROTTLE_UPLOAD_RATE): each one is decoded and stored."""

    scope = "upload"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
