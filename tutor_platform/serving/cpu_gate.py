"""At most AI_CPU_SLOTS requests that ask AI-Core run Python at once in a process.

A burst of sends is CPU work at both ends (authenticate, save the message,
read the history; save the reply, count it, serialize) around a long wait.
Two hundred of them finishing together would each get a sliver of the
process's GIL, and a catalogue read arriving then would queue behind all of
them. Here such a request holds a slot while it works and sets it aside
while it waits on AI-Core (chats.replies.generation), so everything else competes
with a few of them only; the others wait for a slot without using the CPU.
The wait for a slot costs nothing to the sends in total: on a saturated CPU
they were taking turns anyway.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import asks_ai_core

_slots = threading.BoundedSemaphore(settings.AI_CPU_SLOTS)
_held = threading.local()


@contextmanager
def slot() -> Iterator[None]:
    _slots.acquire()
    _held.slot = True
    try:
        yield
    finally:
        _held.slot = False
        _slots.release()


def holds_slot() -> bool:
    return getattr(_held, "slot", False)


@contextmanager
def set_aside() -> Iterator[None]:
    """Gives this thread's slot up while it waits, and takes it back after;
    nothing to do for a thread without one (a streamed reply's own thread)."""
    if not holds_slot():
        yield
        return
    _held.slot = False
    _slots.release()
    try:
        yield
    finally:
        _slots.acquire()
        _held.slot = True


class AICoreRequestGateMiddleware:
    """Sends, /reply/ and /regenerate/ run under a slot (see the module)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not asks_ai_core(request.method, request.path):
            return self.get_response(request)
        with slot():
            return self.get_response(request)
