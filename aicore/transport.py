"""The HTTP session AI-Core is called through, with a total deadline per call.

`requests` timeouts bound each socket operation, not a whole call: an AI-Core
that sends one byte every 1.5 s never trips a 5 s read timeout and can hold
a request thread for as long as it likes. `deadline()` arms a timer for the
call; when it fires, the socket the call is using is shut down, so whatever
read is blocked on it returns at once and the call fails. The session's
connections tell the deadline which socket that is.

One thread per process keeps every call's deadline (`_Watchdog`): a
`threading.Timer` per call cost a thread start and stop on every send, and
a thread more per open stream (docs/decisions/2026-12-05-figures-from-comments.md).
"""

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Deadline:
    """One call's deadline: knows the call's connection, can cut it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: HTTPConnection | None = None
        self.expired = False
        self.finished = False

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sock = getattr(self._connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self.finished = True
            self._connection = None


class _Watchdog:
    """Expires deadlines when they are due, from one thread: a heap by due
    time, finished deadlines dropped as they come up."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()  # breaks ties without comparing deadlines
        self._thread: threading.Thread | None = None

    def watch(self, watch: Deadline, seconds: float) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():  # the first call (in this process)
                self._thread = threading.Thread(target=self._run, name="ai-core-deadlines", daemon=True)
                self._thread.start()
            elif self._due[0][2] is watch:  # due before all the others: the thread must wake sooner
                self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._due and self._due[0][2].finished:
                        heapq.heappop(self._due)
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    if wait is not None and wait <= 0:
                        break
                    self._changed.wait(wait)
                _, _, due = heapq.heappop(self._due)
            due.expire()


_watchdog = _Watchdog()


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Cuts the connection of the calls made inside after `seconds`."""
    watch = Deadline()
    _current.deadline = watch
    _watchdog.watch(watch, seconds)
    try:
        yield watch
    finally:
        watch.finish()
        _current.deadline = None


class _AttachMixin:
    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch = getattr(_current, "deadline", None)
        if watch is not None:
            watch.attach(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_AttachMixin, HTTPConnection):
    pass


class _HTTPSConnection(_AttachMixin, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def new_session(pool_size: int, url: str) -> requests.Session:
    session = requests.Session()
    # requests reads the proxy and CA-bundle variables of the environment
    # on every call (a scan of os.environ, see
    # docs/decisions/2026-12-05-figures-from-comments.md); here they are
    # read once instead, for `url`. A .netrc is never used: AI-Core's
    # credential is AI_CORE_API_KEY.
    environment = session.merge_environment_settings(url, {}, None, None, None)
    session.proxies, session.verify = environment["proxies"], environment["verify"]
    session.trust_env = False
    # Many request threads may wait on AI-Core at once; keep a connection each.
    # No retries here: the client decides what may be retried.
    adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
