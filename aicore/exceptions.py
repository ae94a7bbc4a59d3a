"""What can go wrong when asking AI-Core; the API maps each to a status code."""


class AICoreError(Exception):
    """Base class: AI-Core gave no usable answer."""

    status_code = 502
    code = "ai_core_error"
    default_detail = "AI-Core failed."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class AICoreTimeout(AICoreError):
    """No answer within AI_CORE_TIMEOUT. Never retried: it may still be generating."""

    status_code = 504
    code = "ai_core_timeout"
    default_detail = "The AI tutor did not answer in time. Please retry."


class AICoreUnavailable(AICoreError):
    """AI-Core cannot be reached, or the circuit breaker is open."""

    status_code = 503
    code = "ai_core_unavailable"
    default_detail = "The AI tutor is unavailable right now. Please retry shortly."

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AICoreBadResponse(AICoreError):
    """A 5xx after the retries, a body that is not JSON, or JSON without a string `content`."""

    status_code = 502
    code = "ai_core_bad_response"
    default_detail = "The AI tutor gave an invalid answer. Please retry."
