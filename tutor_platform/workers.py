"""gunicorn's gthread worker with a second thread pool for requests that wait on AI-Core.

A send (or `/reply/`, `/regenerate/`, a re-attached stream) holds its thread
for as long as AI-Core takes: seconds, up to a minute. In one pool, a burst
of them takes every thread and everything else (the catalogue, logins,
message pages) queues behind students who are only waiting. Here those
requests run in a pool of their own (GUNICORN_AI_THREADS per process), so
the other pool (GUNICORN_THREADS) stays free for requests that need CPU
whatever AI-Core does; when the AI pool is full, further sends queue in it,
in order, and are answered as threads free up.

The request line is read with MSG_PEEK, without consuming it, when the
connection is handed to a pool; a request whose line has not arrived yet
goes to the general pool, which reads it as usual. Behind nginx (which
passes requests on whole) the line is always there.
"""

import os
import re
import socket
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

_AI_PATHS = re.compile(r"^/api/v1/chats/\d{1,18}/(messages|reply|regenerate|stream)/$")
PEEK_BYTES = 64
# Threads per process for requests that wait on AI-Core (GUNICORN_AI_THREADS).
# They hold no database connection while they wait, so the database does
# not bound them; memory does, and a waiting thread costs little of it.
DEFAULT_AI_THREADS = 128


def ai_threads() -> int:
    return int(os.environ.get("GUNICORN_AI_THREADS") or DEFAULT_AI_THREADS)


def asks_ai_core(method: str, path: str) -> bool:
    """POST /api/v1/chats/<id>/{messages,reply,regenerate}/ and GET .../stream/."""
    found = _AI_PATHS.match(path)
    if found is None:
        return False
    return method == ("GET" if found[1] == "stream" else "POST")


def waits_on_ai_core(sock: socket.socket) -> bool:
    """Whether the request waiting on `sock` asks AI-Core, from its request
    line, read without consuming it. False when it has not arrived yet."""
    try:
        start = sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError):
        return False
    method, _, rest = start.decode("latin-1").partition(" ")
    return asks_ai_core(method, rest.split(" ", 1)[0].split("?", 1)[0])


class TwoPoolWorker(ThreadWorker):
    def init_process(self) -> None:
        self.ai_pool = futures.ThreadPoolExecutor(max_workers=ai_threads(), thread_name_prefix="ai")
        super().init_process()

    def enqueue_req(self, conn) -> None:
        pool = self.ai_pool if waits_on_ai_core(conn.sock) else self.tpool
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def handle_quit(self, sig, frame) -> None:
        self.ai_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.ai_pool.shutdown(wait=False)
