"""Issue 17: one thread per process keeps the deadlines of AI-Core calls
(aicore.transport), instead of a timer thread per call."""

import socket
import threading
import time
from types import SimpleNamespace

from aicore import transport


def test_each_deadline_expires_when_due_and_a_finished_one_never(monkeypatch):
    monkeypatch.setattr(transport, "_watchdog", transport._Watchdog())
    with transport.deadline(0.6) as late, transport.deadline(0.1) as soon:
        with transport.deadline(0.2) as finished_early:
            pass
        time.sleep(0.3)
        assert (soon.expired, late.expired) == (True, False)
        time.sleep(0.5)
        assert late.expired
    assert not finished_early.expired and finished_early.finished


def test_an_expired_deadline_shuts_its_calls_socket(monkeypatch):
    monkeypatch.setattr(transport, "_watchdog", transport._Watchdog())
    ours, theirs = socket.socketpair()
    with ours, theirs, transport.deadline(0.1) as watch:
        watch.attach(SimpleNamespace(sock=ours))
        ours.settimeout(5)
        started = time.monotonic()
        assert ours.recv(1) == b""  # a blocked read returns at once when the deadline cuts it
        assert time.monotonic() - started < 2 and watch.expired


def pending(watchdog: transport._Watchdog) -> int:
    with watchdog._changed:
        return sum(not watch.finished for _, _, watch in watchdog._due)


def test_one_thread_keeps_every_deadline(monkeypatch):
    watchdog = transport._Watchdog()
    monkeypatch.setattr(transport, "_watchdog", watchdog)
    before = threading.active_count()
    calls = [transport.deadline(60) for _ in range(50)]
    for call in calls:
        call.__enter__()
    assert threading.active_count() == before + 1
    assert pending(watchdog) == 50
    for call in calls:
        call.__exit__(None, None, None)
    assert pending(watchdog) == 0 and threading.active_count() == before + 1
