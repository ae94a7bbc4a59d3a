"""Serves the built-in AI-Core stub over HTTP, for contract and end-to-end tests.

`--protocol openai` serves it as an OpenAI-compatible server instead:
`POST /v1/chat/completions` and `GET /v1/models` (AI_CORE_URL=http://host:port/v1,
AI_CORE_PROTOCOL=openai). Both answer `GET /api/v1/health`, for whoever waits
on the stub to start."""

import json
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from aicore import stub
from aicore.client import GENERATE_PATH, HEALTH_PATH

MAX_BODY_BYTES = 10 * 1024 * 1024
OPENAI_COMPLETIONS_PATH = "/v1/chat/completions"
OPENAI_MODELS_PATH = "/v1/models"
OPENAI_MODELS = ("stub-model", "stub-model-large")


class StubHandler(BaseHTTPRequestHandler):
    server_version = "AICoreStub/1.0"
    # Headers and body go out as two writes; without this, Nagle plus the
    # client's delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    delay: float = 0.0
    chunk_delay: float = 0.0
    quiet: bool = False
    protocol: str = "aicore"

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        request_id = self.headers.get("X-Request-ID")
        if request_id:
            self.send_header("X-Request-ID", request_id)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == HEALTH_PATH:
            self._send_json(HTTPStatus.OK, {"status": "ok", "stub": True})
        elif self.protocol == "openai" and self.path == OPENAI_MODELS_PATH:
            models = [{"id": model, "object": "model", "owned_by": "stub"} for model in OPENAI_MODELS]
            self._send_json(HTTPStatus.OK, {"object": "list", "data": models})
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"detail": "Not found."})

    def do_POST(self) -> None:
        if self.path != (OPENAI_COMPLETIONS_PATH if self.protocol == "openai" else GENERATE_PATH):
            self._send_json(HTTPStatus.NOT_FOUND, {"detail": "Not found."})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"detail": "Too large."})
            return
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send_json(HTTPStatus.BAD_REQUEST, {"detail": "Body is not JSON."})
            return
        if not isinstance(data, dict):
            self._send_json(HTTPStatus.BAD_REQUEST, {"detail": "Body must be a JSON object."})
            return
        if self.delay:
            time.sleep(self.delay)
        streamed = data.get("stream") is True
        if self.protocol == "openai":
            if streamed:
                self._send_stream([*stub.chat_completion_chunks(data), "[DONE]"])
            else:
                self._send_json(HTTPStatus.OK, stub.chat_completion(data))
            return
        answer = stub.generate(data)
        if streamed:
            extra = {key: value for key, value in answer.items() if key != "content"}
            pieces = [{"delta": piece} for piece in stub.stream_pieces(answer)]
            self._send_stream([*pieces, {"done": True, **extra}])
        else:
            self._send_json(HTTPStatus.OK, answer)

    def _send_stream(self, events: list[dict[str, Any] | str]) -> None:
        """Server-sent events, `chunk_delay` apart (a string is sent as it is: `[DONE]`)."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, event in enumerate(events):
            if index and self.chunk_delay:
                time.sleep(self.chunk_delay)
            text = event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)
            data = f"data: {text}\n\n".encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)


class StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


class Command(BaseCommand):
    help = "Serve the AI-Core stub: POST /api/v1/generate and GET /api/v1/health (or OpenAI's protocol)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--delay", type=float, default=0.0, help="Seconds to wait before each reply.")
        parser.add_argument(
            "--chunk-delay", type=float, default=0.0, help="Seconds between the words of a streamed reply."
        )
        parser.add_argument("--quiet", action="store_true", help="Do not log each request.")
        parser.add_argument(
            "--protocol",
            choices=("aicore", "openai"),
            default="aicore",
            help="AI-Core's contract (default) or the OpenAI chat-completions protocol under /v1.",
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        delay: float,
        chunk_delay: float,
        quiet: bool,
        protocol: str,
        **options: Any,
    ) -> None:
        handler = type(
            "Handler",
            (StubHandler,),
            {"delay": delay, "chunk_delay": chunk_delay, "quiet": quiet, "protocol": protocol},
        )
        server = StubServer((host, port), handler)
        url = f"http://{host}:{server.server_port}" + ("/v1" if protocol == "openai" else "")
        self.stdout.write(
            f"AI-Core stub ({protocol}) on {url} (delay {delay}s, {chunk_delay}s per word)", ending="\n"
        )
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
