from rest_framework.throttling import UserRateThrottle


class AISendThrottle(UserRateThrottle):
    """Per-user budget for requests that call AI-Core (THROTTLE_AI_RATE).

    Counted in the cache, so with CACHE_URL=redis://... every process shares it.
    """

    scope = "ai_send"
