from tutor_platform.throttling import UserRateThrottle


class AISendThrottle(UserRateThrottle):
    """Per-user budget for requests that call AI-Core (THROTTLE_AI_RATE).

    Counted atomically in the cache, so with CACHE_URL=redis://... every
    process shares it and simultaneous sends cannot overshoot it.
    """

    scope = "ai_send"
