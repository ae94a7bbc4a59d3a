"""HTTP client for AI-Core. Knows HTTP and JSON, nothing about chats."""

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from . import stub
from .circuit import CircuitBreaker
from .exceptions import AICoreBadResponse, AICoreError, AICoreTimeout, AICoreUnavailable

logger = logging.getLogger(__name__)

GENERATE_PATH = "/api/v1/generate"
HEALTH_PATH = "/api/v1/health"
RETRY_STATUSES = frozenset({502, 503})
HEALTH_TIMEOUT = (1.0, 2.0)


@dataclass(frozen=True)
class Generation:
    """AI-Core's answer: the reply text and every other field it returned."""

    content: str
    extra: dict[str, Any] = field(default_factory=dict)


def parse_generation(body: Any) -> Generation:
    if not isinstance(body, dict) or not isinstance(body.get("content"), str):
        raise AICoreBadResponse("AI-Core answered JSON without a string `content`.")
    extra = {key: value for key, value in body.items() if key != "content"}
    return Generation(content=body["content"], extra=extra)


def _new_session(pool_size: int) -> requests.Session:
    session = requests.Session()
    # Many request threads may wait on AI-Core at once; keep a connection each.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class AICoreClient:
    """Calls AI-Core with bounded timeouts, bounded retries and a circuit breaker.

    Retries (with exponential backoff) only connection errors and 502/503:
    after a read timeout the model may still be generating, so the request
    is never sent twice. Every failure surfaces as an `AICoreError`.
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
        self.session = _new_session(pool_size)

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
        except AICoreError:
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return generation

    def _generate(self, data: dict[str, Any], request_id: str) -> Generation:
        url = self.base_url + GENERATE_PATH
        last_error: AICoreError = AICoreUnavailable()
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                response = self.session.post(
                    url, json=data, headers=self._headers(request_id), timeout=self.timeout
                )
            except requests.ConnectionError as exc:
                # Includes ConnectTimeout: the request never reached AI-Core.
                logger.warning("AI-Core unreachable (attempt %d): %s", attempt + 1, type(exc).__name__)
                last_error = AICoreUnavailable()
                continue
            except requests.Timeout as exc:
                logger.warning("AI-Core read timeout after %ss", self.timeout[1])
                raise AICoreTimeout() from exc
            except requests.RequestException as exc:
                # E.g. the connection dropped half-way through the body.
                logger.warning("AI-Core transport error: %s", type(exc).__name__)
                raise AICoreUnavailable() from exc
            if response.status_code in RETRY_STATUSES:
                logger.warning("AI-Core answered %d (attempt %d)", response.status_code, attempt + 1)
                last_error = AICoreBadResponse(f"AI-Core answered {response.status_code}.")
                continue
            return self._parse(response)
        raise last_error

    @staticmethod
    def _parse(response: requests.Response) -> Generation:
        if not 200 <= response.status_code < 300:
            logger.warning("AI-Core answered %d", response.status_code)
            raise AICoreBadResponse(f"AI-Core answered {response.status_code}.")
        try:
            body = response.json()
        except ValueError as exc:
            raise AICoreBadResponse("AI-Core answered a body that is not JSON.") from exc
        return parse_generation(body)

    def health(self) -> bool:
        try:
            response = self.session.get(self.base_url + HEALTH_PATH, timeout=HEALTH_TIMEOUT)
        except requests.RequestException:
            return False
        return response.status_code == 200


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
