"""What watching a reply (chats.replies.heartbeat) adds to a send's CPU, in-process.

    .venv/bin/python bench/heartbeat_cost.py      # needs Redis on 127.0.0.1; seconds

Times, on Redis, a reply's two live writes without the heartbeat (the code
before it) against the same writes carrying the heartbeat's index in their
pipelines, interleaved, 2 000 replies each; and one beat of 200 replies.
"""

import os
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.update(
    ENV_FILE=os.devnull,
    DEBUG="True",
    CACHE_URL="redis://127.0.0.1:6379/11",
    DJANGO_SETTINGS_MODULE="tutor_platform.settings",
)

import django

django.setup()

from chats import heartbeat, live  # noqa: E402

REPLIES = 2000
heartbeat._watching_pid = os.getpid()  # no beating thread: only the request's own work is timed


def plain() -> None:
    live._set(1, {"state": "running", "user_message": 2, "text": ""}, 360)
    live.finished(1, 2, "x", event="assistant_message", data={"message": 3})


def watched() -> None:
    reply = heartbeat.watch(chat_id=1, user_message_id=2, user_id=3, day=date.today(), variant=False)
    live.started(1, 2, reply)
    live.finished(1, 2, "x", event="assistant_message", data={"message": 3}, watched=reply)
    heartbeat.unwatch(reply)


def cpu_ms(work) -> float:
    for _ in range(200):
        work()
    started = time.process_time()
    for _ in range(REPLIES):
        work()
    return (time.process_time() - started) / REPLIES * 1000


rounds = [(cpu_ms(plain), cpu_ms(watched)) for _ in range(3)]
for before, after in rounds:
    print(f"a reply's live writes: {before:.3f} ms of CPU without the heartbeat, {after:.3f} ms with it")
many = [
    heartbeat.watch(chat_id=i, user_message_id=i, user_id=3, day=date.today(), variant=False)
    for i in range(200)
]
started = time.process_time()
for _ in range(50):
    heartbeat.beat()
print(f"one beat of 200 replies: {(time.process_time() - started) / 50 * 1000:.3f} ms of CPU")
for reply in many:
    heartbeat.unwatch(reply)
