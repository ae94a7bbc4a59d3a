"""Issue 24, items 3 and 4: AI-Core's answer is read piece by piece whatever
its HTTP framing, and cut off as soon as it passes AI_CORE_MAX_ANSWER_BYTES,
on a real socket (`responses` cannot fake framing)."""

import json
import threading
import time
import tracemalloc

import pytest

from aicore.client import AICoreClient
from aicore.exceptions import AICoreBadResponse
from aicore.tests.test_client import direct_client
from conftest import raw_ai_core

OFFERED = 300 * 1024 * 1024  # what the broken AI-Core would send
PAYLOAD = {"chat_id": 1, "message": "Сколько будет 2+2?", "history": []}


def head(content_type: str, *, length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Connection: close"
    return f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def sse(data: dict) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def client_for(settings, *, stream_timeout: float = 10) -> AICoreClient:
    client = direct_client(url=settings.AI_CORE_URL)
    client.timeout, client.stream_timeout = (1, 10), stream_timeout
    return client


def test_an_sse_body_ended_only_by_the_closed_connection_is_relayed_as_it_arrives(settings):
    released = threading.Event()

    def answer(conn, stop) -> None:
        conn.sendall(head("text/event-stream") + sse({"delta": "Первая "}))
        released.wait(5)  # the second piece only once the first was relayed
        conn.sendall(sse({"delta": "и вторая."}) + sse({"done": True, "tokens_used": 3}))

    with raw_ai_core(settings, answer):
        pieces = client_for(settings).generate(PAYLOAD, request_id="r", stream=True)
        started = time.monotonic()
        first = next(pieces)
        waited = time.monotonic() - started
        released.set()
        rest = []
        with pytest.raises(StopIteration) as end:
            while True:
                rest.append(next(pieces))
    assert first == "Первая "
    assert waited < 2  # read whole, it would have come after the server's 5 s
    assert rest == ["и вторая."]
    assert end.value.value.content == "Первая и вторая."
    assert end.value.value.extra == {"tokens_used": 3}


def oversized(kind: str):
    """An AI-Core that offers 300 MB in the given framing; records what it got to send."""
    sent = {"bytes": 0}
    piece = b"a" * 65536

    def answer(conn, stop) -> None:
        if kind == "json-length":
            conn.sendall(head("application/json", length=OFFERED) + b'{"content": "')
        elif kind == "json-close":
            conn.sendall(head("application/json") + b'{"content": "')
        else:
            conn.sendall(head("text/event-stream"))
        while sent["bytes"] < OFFERED and not stop.is_set():
            data = sse({"delta": "a" * 65536}) if kind == "sse-close" else piece
            conn.sendall(data)
            sent["bytes"] += len(data)

    return sent, answer


@pytest.mark.parametrize("kind", ["json-length", "json-close", "sse-close"])
def test_an_answer_over_the_cap_is_cut_off_while_it_is_read(settings, kind):
    settings.AI_CORE_MAX_ANSWER_BYTES = 2 * 1024 * 1024
    sent, answer = oversized(kind)
    with raw_ai_core(settings, answer):
        client = client_for(settings)
        tracemalloc.start()
        try:
            with pytest.raises(AICoreBadResponse, match="more than 2097152 bytes"):
                for _piece in client.generate(PAYLOAD, request_id="r", stream=kind.startswith("sse")):
                    pass
            _now, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        time.sleep(0.2)  # the server notices the closed connection
    # At most the cap plus a read's worth (and the relayed pieces) was held;
    # the old code held the whole answer (300 MB) before checking its size.
    assert peak < 12 * 1024 * 1024
    # The connection was closed at the cap: the server could not send the rest.
    assert sent["bytes"] < 64 * 1024 * 1024
