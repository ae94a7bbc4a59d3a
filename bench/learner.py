"""The struggle estimate's CPU on the send path (issue 29: under 1 ms).

    .venv/bin/python bench/learner.py            # a few seconds, no database

`chats.replies.learning.struggle_of` over the worst window the send path can
read: AI_STRUGGLE_WINDOW (10) exchanges of MESSAGE_MAX_CHARS-long questions
(each compared on its first COMPARED_CHARS), each answered three times
(two regenerations) and rated both ways, so every row the one query can
return (80) is there. Against a baseline measured in the same run: encoding
the body AI-Core gets for a send with 20 messages of history (what every
send already pays).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ROUNDS, CALLS = 7, 500


def setup() -> None:
    os.environ.update(ENV_FILE=os.devnull, DEBUG="True", DJANGO_SETTINGS_MODULE="tutor_platform.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()


def row(pk: int, role: str, content: str, **fields: object) -> dict:
    """A row as the window's query returns it."""
    base = {"intent": "", "reply_to_id": None, "reaction": None, "rating": None, "minutes": 30}
    return {"id": pk, "role": role, "text": content, **base, **fields}


def worst_window() -> list[dict]:
    from django.conf import settings

    from chats.replies.learning import COMPARED_CHARS

    rows, question = [], 10_000
    words = ["найдите", "корни", "уравнения", "икс", "квадрат", "минус", "пять", "плюс", "шесть"]
    for exchange in range(settings.AI_STRUGGLE_WINDOW):
        text = " ".join(words[(exchange + i) % len(words)] for i in range(settings.MESSAGE_MAX_CHARS // 8))
        rows.append(row(question, "user", text[:COMPARED_CHARS], intent="hint"))  # as the query cuts it
        for variant in range(3):
            for reaction, rating in (("too_hard", None), (None, 2)):
                rows.append(row(question + 1 + variant, "assistant", "", reply_to_id=question,
                                reaction=reaction, rating=rating))  # fmt: skip
        question += 10
    return list(reversed(rows))  # newest first, as the query returns them


def cpu_per_call(work) -> float:
    """Median over ROUNDS of the process CPU per call, in ms."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(CALLS):
            work()
        rounds.append((time.process_time() - started) / CALLS * 1000)
    return statistics.median(rounds)


def main() -> None:
    setup()
    from chats.replies.learning import struggle_of

    rows = worst_window()
    asked = rows[0]["id"] if rows[0]["role"] == "user" else max(r["id"] for r in rows if r["role"] == "user")
    estimate = struggle_of(rows, asked)
    history = [{"role": "user" if i % 2 else "assistant", "content": "Ответ " * 200} for i in range(20)]
    body = {"message": "Вопрос " * 100, "history": history, "learner": {"struggle": estimate}}
    estimate_ms = cpu_per_call(lambda: struggle_of(rows, asked))
    baseline_ms = cpu_per_call(lambda: json.dumps(body, ensure_ascii=False).encode())
    print("| figure | measured | ratio | target |")
    print("|---|---|---|---|")
    figure = f"struggle estimate, worst window ({len(rows)} rows) vs encoding a send's body"
    measured = f"{estimate_ms:.3f} ms vs {baseline_ms:.3f} ms CPU"
    print(f"| {figure} | {measured} | {estimate_ms / baseline_ms:.2f} | < 1 ms |")
    print(f"\n(the estimate it computed: {estimate})")


if __name__ == "__main__":
    main()
