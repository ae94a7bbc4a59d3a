"""HTTP client for AI-Core. Knows HTTP and JSON, nothing about chats."""

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, ReadTimeoutError

from tutor_platform.validators import json_problem

from . import stub
from .circuit import CircuitBreaker
from .exceptions import AICoreBadResponse, AICoreError, AICoreTimeout, AICoreUnavailable
from .transport import deadline, new_session

logger = logging.getLogger(__name__)

GENERATE_PATH = "/api/v1/generate"
HEALTH_PATH = "/api/v1/health"
HEALTH_TIMEOUT = (1.0, 2.0)
# An answer is a reply text and a little metadata; anything bigger is broken.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
MAX_METADATA_DEPTH = 8


@dataclass(frozen=True)
class Generation:
    """AI-Core's answer: the reply text and every other field it returned."""

    content: str
    extra: dict[str, Any] = field(default_factory=dict)


def parse_generation(body: Any) -> Generation:
    """Checks a decoded answer at the boundary: nothing unstorable gets past it."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        raise AICoreBadResponse("AI-Core answered JSON without a string `content`.")
    problem = json_problem(body, max_depth=MAX_METADATA_DEPTH)
    if problem:
        raise AICoreBadResponse(f"AI-Core answered JSON that cannot be stored: {problem}.")
    extra = {key: value for key, value in body.items() if key != "content"}
    return Generation(content=body["content"], extra=extra)


def decode_answer(raw: bytes) -> Any:
    """Strict JSON: NaN, Infinity and `1e999` are refused, as is absurd nesting."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise AICoreBadResponse("AI-Core answered a body that is not valid JSON.") from exc


def _reject_constant(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _is_read_timeout(exc: requests.RequestException) -> bool:
    # requests reports a read timeout in the body as a ConnectionError.
    reason = exc.args[0] if exc.args else None
    return isinstance(exc, requests.ReadTimeout) or isinstance(reason, ReadTimeoutError)


def _never_reached(exc: requests.ConnectionError) -> bool:
    """True when the request provably never got to AI-Core (it failed to connect)."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(exc, requests.ConnectTimeout) or isinstance(reason, ConnectTimeoutError)


class AICoreClient:
    """Calls AI-Core with a deadline, bounded retries and a circuit breaker.

    Each attempt must finish within `timeout` seconds, however slowly AI-Core
    sends its answer. Only what provably never reached AI-Core is retried
    (with exponential backoff): a failed connection, or a 503 with
    `Retry-After`. A request that may have reached it is never sent twice,
    and every attempt carries the same `Idempotency-Key` so AI-Core can
    deduplicate. Every failure surfaces as an `AICoreError`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        timeout: float,
        connect_timeout: float,
        max_retries: int,
        retry_backoff: float,
        api_key: str,
        breaker: CircuitBreaker,
        pool_size: int = 100,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.api_key = api_key
        self.breaker = breaker
        self.session = new_session(pool_size)

    def _headers(self, request_id: str) -> dict[str, str]:
        headers = {"X-Request-ID": request_id, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def generate_response(self, data: dict[str, Any], *, request_id: str) -> Generation:
        if not self.breaker.allow():
            raise AICoreUnavailable(
                "AI-Core is failing; calls are paused for a moment.",
                retry_after=self.breaker.retry_after(),
            )
        try:
            generation = self._generate(data, request_id)
        except BaseException:
            # Whatever went wrong, including a bug: a half-open trial must end.
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return generation

    def _generate(self, data: dict[str, Any], request_id: str) -> Generation:
        url = self.base_url + GENERATE_PATH
        headers = {**self._headers(request_id), "Idempotency-Key": uuid.uuid4().hex}
        last_error: AICoreError = AICoreUnavailable()
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                answer = self._post(url, data, headers)
            except requests.ConnectionError as exc:
                if not _never_reached(exc):
                    # E.g. the connection dropped half-way through the answer.
                    logger.warning("AI-Core transport error: %s", type(exc).__name__)
                    raise AICoreUnavailable() from exc
                logger.warning("AI-Core unreachable (attempt %d): %s", attempt + 1, type(exc).__name__)
                last_error = AICoreUnavailable()
                continue
            except requests.RequestException as exc:
                logger.warning("AI-Core transport error: %s", type(exc).__name__)
                raise AICoreUnavailable() from exc
            if answer.status == 503 and answer.retry_after:
                logger.warning("AI-Core answered 503 (attempt %d)", attempt + 1)
                last_error = AICoreUnavailable(retry_after=answer.retry_after)
                continue
            if not 200 <= answer.status < 300:
                logger.warning("AI-Core answered %d", answer.status)
                raise AICoreBadResponse(f"AI-Core answered {answer.status}.")
            return parse_generation(decode_answer(answer.body))
        raise last_error

    def _post(self, url: str, data: dict[str, Any], headers: dict[str, str]) -> "_Answer":
        """One attempt, all of it (connect, headers, body) within the read timeout."""
        with deadline(self.timeout[1]) as watch:
            try:
                with self.session.post(
                    url, json=data, headers=headers, timeout=self.timeout, stream=True
                ) as response:
                    answer = _Answer.read(response)
            except requests.RequestException as exc:
                if watch.expired or _is_read_timeout(exc):
                    logger.warning("AI-Core gave no whole answer within %ss", self.timeout[1])
                    raise AICoreTimeout() from exc
                raise
            if watch.expired:  # cut short: what was read is not the whole answer
                raise AICoreTimeout()
            return answer

    def health(self) -> bool:
        try:
            response = self.session.get(self.base_url + HEALTH_PATH, timeout=HEALTH_TIMEOUT)
        except requests.RequestException:
            return False
        return response.status_code == 200


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    retry_after: int | None

    @classmethod
    def read(cls, response: requests.Response) -> "_Answer":
        chunks, size = [], 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise AICoreBadResponse(f"AI-Core answered more than {MAX_ANSWER_BYTES} bytes.")
            chunks.append(chunk)
        retry_after = response.headers.get("Retry-After", "")
        return cls(
            response.status_code, b"".join(chunks), int(retry_after) if retry_after.isdigit() else None
        )


class StubClient:
    """The built-in stub (`AI_CORE_URL=stub`): same interface, no network."""

    def generate_response(self, data: dict[str, Any], *, request_id: str) -> Generation:
        return parse_generation(stub.generate(data))

    def health(self) -> bool:
        return True


_clients: dict[tuple, AICoreClient | StubClient] = {}
_clients_lock = threading.Lock()


def get_client() -> AICoreClient | StubClient:
    """The process's client for the current settings (one session, one breaker)."""
    key = (
        settings.AI_CORE_URL,
        settings.AI_CORE_TIMEOUT,
        settings.AI_CORE_CONNECT_TIMEOUT,
        settings.AI_CORE_MAX_RETRIES,
        settings.AI_CORE_RETRY_BACKOFF,
        settings.AI_CORE_API_KEY,
        settings.AI_CORE_CIRCUIT_FAILURES,
        settings.AI_CORE_CIRCUIT_RESET_SECONDS,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = _build_client()
        return client


def _build_client() -> AICoreClient | StubClient:
    if settings.AI_CORE_URL == "stub":
        return StubClient()
    return AICoreClient(
        base_url=settings.AI_CORE_URL,
        timeout=settings.AI_CORE_TIMEOUT,
        connect_timeout=settings.AI_CORE_CONNECT_TIMEOUT,
        max_retries=settings.AI_CORE_MAX_RETRIES,
        retry_backoff=settings.AI_CORE_RETRY_BACKOFF,
        api_key=settings.AI_CORE_API_KEY,
        breaker=CircuitBreaker(settings.AI_CORE_CIRCUIT_FAILURES, settings.AI_CORE_CIRCUIT_RESET_SECONDS),
    )


def reset_clients() -> None:
    """Forget every client (and its breaker state). For tests."""
    with _clients_lock:
        _clients.clear()
