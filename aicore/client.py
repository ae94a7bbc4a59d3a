"""HTTP client for AI-Core and other model servers. Knows HTTP and JSON,
nothing about chats.

`get_client()` is the process's router: a version's `model_id` of the form
`<provider>/<model>` goes to that provider of AI_PROVIDERS (its own session
and circuit breaker), anything else to the default (AI_CORE_URL, in
AI_CORE_PROTOCOL). What each protocol sends and reads: protocols.py."""

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.core.cache import cache
from urllib3.exceptions import ConnectTimeoutError, DecodeError, ProtocolError, ReadTimeoutError, SSLError

from . import stub
from .circuit import CircuitBreaker
from .exceptions import AICoreBadResponse, AICoreError, AICoreTimeout, AICoreUnavailable
from .protocols import PROTOCOLS, AICoreProtocol, Generation, WireProtocol, parse_generation
from .routing import Provider, split_model
from .transport import Deadline, deadline, new_session

logger = logging.getLogger(__name__)
T = TypeVar("T")

GENERATE_PATH = AICoreProtocol.generate_path
HEALTH_PATH = AICoreProtocol.health_path
HEALTH_TIMEOUT = (1.0, 2.0)
HEALTH_CACHE_KEY = "aicore:health"
MODELS_CACHE_KEY = "aicore:models"
MODELS_LISTED = 500  # of a server's model list, at most: they are offered in a form
MODEL_ID_MAX_CHARS = 200  # TutorVersion.model_id's


def request_body(
    *,
    student: str | None,
    chat_id: int | None,
    tutor_id: int | None,
    version_number: int | None,
    content: Any,
    message: str,
    history: list[dict[str, str]],
    attachments: list[dict[str, Any]],
    learner: dict[str, Any],
    experiment_arm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The contract's generate body. `content` has the tutor's system_prompt,
    model_id and knowledge_base_id (a tutor version, or an unsaved draft);
    `student` is the pseudonymous key of who asks; `learner` the learner
    context (profile, teaching_mode, intent, progress_minutes, struggle);
    `experiment_arm`, during an experiment, `{experiment, arm}`."""
    arm = {} if experiment_arm is None else {"experiment_arm": experiment_arm}
    return {
        "student": student,
        "chat_id": chat_id,
        "tutor_id": tutor_id,
        "tutor_version": version_number,
        "model_id": content.model_id,
        "knowledge_base_id": content.knowledge_base_id,
        "system_prompt": content.system_prompt,
        "message": message,
        "history": history,
        "attachments": attachments,
        "learner": learner,
        **arm,
    }


def drain(generator: Generator[Any, None, T]) -> T:
    """Runs a generator to its end and returns what it returns."""
    while True:
        try:
            next(generator)
        except StopIteration as stop:
            result: T = stop.value
            return result


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
        stream_timeout: float,
        connect_timeout: float,
        max_retries: int,
        retry_backoff: float,
        api_key: str,
        breaker: CircuitBreaker,
        protocol: WireProtocol = PROTOCOLS["aicore"],
        pool_size: int = 100,
    ) -> None:
        self.protocol = protocol
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, timeout)
        self.stream_timeout = stream_timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.api_key = api_key
        self.breaker = breaker
        self.session = new_session(pool_size, self.base_url)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _headers(self, request_id: str) -> dict[str, str]:
        return {"X-Request-ID": request_id, "Accept": "application/json", **self._auth()}

    def generate(
        self, data: dict[str, Any], *, request_id: str, stream: bool = False
    ) -> Generator[str, None, Generation]:
        """Asks AI-Core for a reply; returns it as a `Generation`.

        With `stream`, yields the reply's pieces as AI-Core sends them (one
        piece when it answers plain JSON); the whole reply must come within
        `stream_timeout`, each piece within `timeout`.
        """
        if not self.breaker.allow():
            raise AICoreUnavailable(
                "AI-Core is failing; calls are paused for a moment.",
                retry_after=self.breaker.retry_after(),
            )
        try:
            generation = yield from self._generate(data, request_id, stream)
        except GeneratorExit:  # the caller stopped reading (a withheld reply): AI-Core was answering
            self.breaker.record_success()
            raise
        except BaseException:
            # Whatever went wrong, including a bug: a half-open trial must end.
            self.breaker.record_failure()
            raise
        self.breaker.record_success()
        return generation

    def _generate(
        self, data: dict[str, Any], request_id: str, stream: bool
    ) -> Generator[str, None, Generation]:
        url = self.base_url + self.protocol.generate_path
        headers = {**self._headers(request_id), "Idempotency-Key": uuid.uuid4().hex}
        body = self.protocol.request(data, stream)
        last_error: AICoreError = AICoreUnavailable()
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.retry_backoff * 2 ** (attempt - 1))
            try:
                return (yield from self._attempt(url, body, headers, stream))
            except _NeverReached as retry:
                logger.warning("AI-Core unreachable or busy (attempt %d)", attempt + 1)
                last_error = retry.error
        raise last_error

    def _attempt(
        self, url: str, body: dict[str, Any], headers: dict[str, str], stream: bool
    ) -> Generator[str, None, Generation]:
        """One call, all of it (connect, headers, every byte) within the deadline.

        Raises _NeverReached when the request provably never got to AI-Core
        (the only case worth a retry).
        """
        limit = self.stream_timeout if stream else self.timeout[1]
        with deadline(limit) as watch:
            try:
                with self.session.post(
                    url, json=body, headers=headers, timeout=self.timeout, stream=True
                ) as response:
                    _check_status(response, self.protocol.retry_statuses)
                    if stream and response.headers.get("Content-Type", "").startswith("text/event-stream"):
                        return (yield from self.protocol.events(_event_data(response, watch), decode_answer))
                    generation = self.protocol.answer(decode_answer(_read_body(response, watch)))
                    if stream:
                        yield generation.content  # a JSON answer is relayed as one piece
                    return generation
            except requests.RequestException as exc:
                if watch.expired or _is_read_timeout(exc):
                    logger.warning("AI-Core gave no whole answer within %ss", limit)
                    raise AICoreTimeout() from exc
                if isinstance(exc, requests.ConnectionError) and _never_reached(exc):
                    raise _NeverReached(AICoreUnavailable()) from exc
                # E.g. the connection dropped half-way through the answer.
                logger.warning("AI-Core transport error: %s", type(exc).__name__)
                raise AICoreUnavailable() from exc

    def models(self) -> list[str]:
        """The models an OpenAI-compatible server lists (`GET /models`); none
        from AI-Core, whose contract has no such list, or from a server down."""
        if self.protocol.name != "openai":
            return []
        try:
            response = self.session.get(
                self.base_url + "/models", headers=self._auth(), timeout=HEALTH_TIMEOUT
            )
            listed = response.json().get("data") if response.status_code == 200 else None
        except (requests.RequestException, ValueError, AttributeError):
            return []
        if not isinstance(listed, list):
            return []
        ids = (item.get("id") for item in listed[:MODELS_LISTED] if isinstance(item, dict))
        return [model for model in ids if isinstance(model, str) and 0 < len(model) <= MODEL_ID_MAX_CHARS]

    def health(self) -> bool:
        try:
            response = self.session.get(
                self.base_url + self.protocol.health_path, headers=self._auth(), timeout=HEALTH_TIMEOUT
            )
        except requests.RequestException:
            return False
        return response.status_code == 200


class _NeverReached(Exception):
    """An attempt that did not reach AI-Core; `error` if no retry is left."""

    def __init__(self, error: AICoreError) -> None:
        super().__init__(error.detail)
        self.error = error


def _check_status(response: requests.Response, retry_statuses: frozenset[int]) -> None:
    if response.status_code in retry_statuses:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            raise _NeverReached(AICoreUnavailable(retry_after=int(retry_after)))
    if not 200 <= response.status_code < 300:
        logger.warning("AI-Core answered %d", response.status_code)
        raise AICoreBadResponse(f"AI-Core answered {response.status_code}.")


READ_BYTES = 64 * 1024


def _chunks(response: requests.Response, watch: Deadline) -> Iterator[bytes]:
    """The body as it arrives, whatever its framing (chunked, Content-Length,
    or ended by the closed connection), in pieces of at most READ_BYTES:
    `read1` returns what one read gave, so a piece is relayed as soon as it
    came. More than AI_CORE_MAX_ANSWER_BYTES (an answer
    is a reply text and a little metadata: anything bigger is broken) is refused when Content-Length
    announces it and cut off as soon as it passes the cap otherwise: at
    most the cap plus one piece is ever held. Cut short by the deadline."""
    cap = settings.AI_CORE_MAX_ANSWER_BYTES
    too_big = AICoreBadResponse(f"AI-Core answered more than {cap} bytes.")
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > cap:
        raise too_big
    size = 0
    while chunk := _read1(response):
        size += len(chunk)
        if size > cap:
            raise too_big
        yield chunk
    if watch.expired:  # the connection was cut: what came is not the whole answer
        raise AICoreTimeout()


def _read1(response: requests.Response) -> bytes:
    """One read of the body, its errors as requests' own (as `iter_content` raises them)."""
    try:
        return response.raw.read1(READ_BYTES, decode_content=True)
    except ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _read_body(response: requests.Response, watch: Deadline) -> bytes:
    return b"".join(_chunks(response, watch))


def _event_data(response: requests.Response, watch: Deadline) -> Iterator[bytes]:
    """The `data:` of each server-sent event as it arrives (comments and
    keep-alives skipped), for the protocol to read."""
    buffer = b""
    for chunk in _chunks(response, watch):
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            data = b"\n".join(line[5:].lstrip() for line in block.splitlines() if line.startswith(b"data:"))
            if data:
                yield data


class StubClient:
    """The built-in stub (`AI_CORE_URL=stub`): same interface, no network."""

    def models(self) -> list[str]:
        return []

    def generate(
        self, data: dict[str, Any], *, request_id: str, stream: bool = False
    ) -> Generator[str, None, Generation]:
        answer = stub.generate(data)
        generation = parse_generation(answer)
        if stream:
            for index, piece in enumerate(stub.stream_pieces(answer)):
                if index and settings.AI_CORE_STUB_CHUNK_DELAY:
                    time.sleep(settings.AI_CORE_STUB_CHUNK_DELAY)  # so a developer sees it stream
                yield piece
        return generation

    def health(self) -> bool:
        return True


class Router:
    """The process's way to every model server: each call goes to the client
    its `model_id` names (routing.py), with the provider's prefix taken off."""

    def __init__(self, default: "AICoreClient | StubClient", providers: dict[str, "AICoreClient"]) -> None:
        self.default = default
        self.providers = providers

    def route(self, model_id: str) -> tuple["AICoreClient | StubClient", str]:
        name, model = split_model(model_id, self.providers)
        return (self.default if name is None else self.providers[name]), model

    def generate(
        self, data: dict[str, Any], *, request_id: str, stream: bool = False
    ) -> Generator[str, None, Generation]:
        client, model = self.route(str(data.get("model_id") or ""))
        if model != data.get("model_id"):
            data = {**data, "model_id": model}
        return client.generate(data, request_id=request_id, stream=stream)

    def health(self) -> bool:
        return self.default.health()

    def models(self) -> list[str]:
        """Every model the servers list, a provider's with its prefix, as a
        version's `model_id` names them."""
        listed = self.default.models()
        for name, client in self.providers.items():
            listed += [f"{name}/{model}" for model in client.models()]
        return listed


def status() -> str:
    """The default's: `stub`, `ok` or `unavailable`; a real check is cached for a few seconds."""
    if settings.AI_CORE_URL == "stub":
        return "stub"
    return _cached_health(HEALTH_CACHE_KEY, get_client().default)


def known_models() -> list[str]:
    """`Router.models`, cached for AI_CORE_MODELS_CACHE_SECONDS (a server
    down is asked again only then): what the admin offers for a model id."""
    try:
        known: list[str] | None = cache.get(MODELS_CACHE_KEY)
    except Exception:  # the cache is down: offer nothing rather than ask on every page
        return []
    if known is None:
        known = get_client().models()
        with contextlib.suppress(Exception):
            cache.set(MODELS_CACHE_KEY, known, settings.AI_CORE_MODELS_CACHE_SECONDS)
    return known


def provider_status() -> dict[str, str]:
    """Each AI_PROVIDERS provider by name: `ok` or `unavailable` (cached like `status`)."""
    providers = get_client().providers
    return {name: _cached_health(f"{HEALTH_CACHE_KEY}:{name}", client) for name, client in providers.items()}


def _cached_health(key: str, client: "AICoreClient | StubClient") -> str:
    try:
        known: str | None = cache.get(key)
    except Exception:  # the cache is down: check the server itself
        return "ok" if client.health() else "unavailable"
    if known is None:
        known = "ok" if client.health() else "unavailable"
        with contextlib.suppress(Exception):
            cache.set(key, known, settings.AI_CORE_HEALTH_CACHE_SECONDS)
    return known


_clients: dict[tuple[Any, ...], Router] = {}
_clients_lock = threading.Lock()


def get_client() -> Router:
    """The process's router for the current settings (one session and one
    breaker per server)."""
    key = (
        settings.AI_CORE_URL,
        settings.AI_CORE_PROTOCOL,
        tuple(settings.AI_PROVIDERS.values()),
        settings.AI_CORE_TIMEOUT,
        settings.AI_CORE_STREAM_TIMEOUT,
        settings.AI_CORE_CONNECT_TIMEOUT,
        settings.AI_CORE_MAX_RETRIES,
        settings.AI_CORE_RETRY_BACKOFF,
        settings.AI_CORE_API_KEY,
        settings.AI_CORE_CIRCUIT_FAILURES,
        settings.AI_CORE_CIRCUIT_RESET_SECONDS,
    )
    with _clients_lock:
        router = _clients.get(key)
        if router is None:
            router = _clients[key] = Router(
                _build_default(),
                {name: _build(provider) for name, provider in settings.AI_PROVIDERS.items()},
            )
        return router


def _build_default() -> "AICoreClient | StubClient":
    if settings.AI_CORE_URL == "stub":
        return StubClient()
    default = Provider("default", settings.AI_CORE_PROTOCOL, settings.AI_CORE_URL, settings.AI_CORE_API_KEY)
    return _build(default)


def _build(provider: Provider) -> AICoreClient:
    return AICoreClient(
        base_url=provider.url,
        timeout=settings.AI_CORE_TIMEOUT,
        stream_timeout=settings.AI_CORE_STREAM_TIMEOUT,
        connect_timeout=settings.AI_CORE_CONNECT_TIMEOUT,
        max_retries=settings.AI_CORE_MAX_RETRIES,
        retry_backoff=settings.AI_CORE_RETRY_BACKOFF,
        api_key=provider.api_key,
        breaker=CircuitBreaker(settings.AI_CORE_CIRCUIT_FAILURES, settings.AI_CORE_CIRCUIT_RESET_SECONDS),
        protocol=PROTOCOLS[provider.protocol],
    )
