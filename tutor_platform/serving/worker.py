"""gunicorn's gthread worker with thread pools of their own for requests that wait on AI-Core.

A send (or `/reply/`, `/regenerate/`, a re-attached stream) holds its thread
for as long as AI-Core takes: seconds, up to a minute. In one pool, a burst
of them takes every thread and everything else (the catalogue, logins,
message pages) queues behind students who are only waiting. Here those
requests run in a pool of their own (GUNICORN_AI_THREADS per process), so
the other pool (GUNICORN_THREADS) stays free for requests that need CPU
whatever AI-Core does; when the AI pool is full, further sends queue in it,
in order, and are answered as threads free up. Re-attached streams
(`GET .../stream/`) have a third pool (GUNICORN_STREAM_THREADS), so
followers never take a thread a send needs.

The request line is read with MSG_PEEK, without consuming it, when the
connection is handed to a pool; a new connection whose request has not
arrived yet waits on the poller (holding no thread) until it has. Requests
pipelined behind it on the same connection run in the same pool: nginx
(deploy/nginx.conf) never pipelines to its upstream, and browsers do not
pipeline, so only a client talking to gunicorn directly can (README).
"""

import functools
import selectors
import socket
import time
from concurrent import futures

from gunicorn.workers.gthread import ThreadWorker

from . import ai_threads, pool_for, stream_threads

PEEK_BYTES = 64


def peek(sock: socket.socket) -> bytes | None:
    """The start of the request waiting on `sock`, read without consuming it:
    None when nothing has arrived yet, b"" when the client hung up."""
    try:
        return sock.recv(PEEK_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def pool_of(start: bytes) -> str | None:
    """The pool (serving.pool_for) of a request starting with `start` (its request line)."""
    method, _, rest = start.decode("latin-1").partition(" ")
    return pool_for(method, rest.split(" ", 1)[0].split("?", 1)[0])


def waits_on_ai_core(start: bytes) -> bool:
    return pool_of(start) is not None


class TwoPoolWorker(ThreadWorker):
    def init_process(self) -> None:
        self.ai_pool = futures.ThreadPoolExecutor(max_workers=ai_threads(), thread_name_prefix="ai")
        self.stream_pool = futures.ThreadPoolExecutor(
            max_workers=stream_threads(), thread_name_prefix="stream"
        )
        super().init_process()

    def enqueue_req(self, conn) -> None:
        start = peek(conn.sock)
        if start is None and not conn.initialized and not conn.data_ready:
            # A new connection whose request has not arrived: wait for it on
            # the poller, so that it is sorted into its pool once it has.
            self._wait_for_request(conn)
            return
        kind = pool_of(start) if start else None
        pool = {"ai": self.ai_pool, "stream": self.stream_pool}.get(kind, self.tpool)
        done = pool.submit(self.handle, conn)
        done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _wait_for_request(self, conn) -> None:
        """As gthread defers a connection that sent nothing yet (finish_request)."""
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, functools.partial(self.on_pending_socket_readable, conn)
        )

    def handle_quit(self, sig, frame) -> None:
        self._shut_pools()
        super().handle_quit(sig, frame)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._shut_pools()

    def _shut_pools(self) -> None:
        self.ai_pool.shutdown(wait=False)
        self.stream_pool.shutdown(wait=False)
