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

# POST /api/v1/chats/<id>/{messages,reply,regenerate}/ and GET .../stream/.
WAITS_ON_AI_CORE = re.compile(
    rb"^(POST /api/v1/chats/\d+/(messages|reply|regenerate)/|GET /api/v1/chats/\d+/stream/)[ ?]"
)
PEEK_BYTES = 64
# Threads per process for requests that wait on AI-Core (GUNICORN_AI_THREADS).
# They hold no database connection while they wait, so the database does
# not bound them; memory does, and a waiting thread costs little of it.
DEFAULT_AI_THREADS = 128


def ai_threads() -> int:
    return int(os.environ.get("GUNICORN_AI_THREADS") or DEFAULT_AI_THREADS)


def waits_on_ai_core(sock: socket.socket) -> bool:
    try:
        start = sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError):
        return False
    return WAITS_ON_AI_CORE.match(start) is not None


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
