"""The built-in safety check's cost, in-process, without a database.

    .venv/bin/python bench/moderation.py

1. An 8 000-character message (MESSAGE_MAX_CHARS) against lists of a few
   thousand terms (the shipped starter lists plus generated stems, words
   and a few patterns): issue 27's target is under 2 ms.
2. A typical 200-character message against the same lists: what the
   check adds to a send.
3. A 2 000-character streamed reply in 5-character pieces through
   StreamCheck (each piece checked with the overlap before it is relayed),
   per piece, and for the whole reply relative to one check of the whole text.

Each figure is the median of ROUNDS rounds; the ratios are measured in the
same run.
"""

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor_platform.settings")
os.environ.setdefault("ENV_FILE", "/dev/null")
os.environ.setdefault("DEBUG", "True")

ROUNDS = 7
TERMS = 3000
TARGET_MS = 2.0
ALPHABET = "абвгдежзийклмнопрстуфхцчшщыэюя"


def lists() -> list[tuple[str, str, str, bool]]:
    data = json.loads((ROOT / "safety" / "data" / "starter.json").read_text(encoding="utf-8"))
    rows = [(t["category"], t["kind"], t["text"], t["exception"]) for t in data["terms"]]
    generator = random.Random(27)  # noqa: S311 (made-up terms, the same every run)
    categories = ["self_harm", "sexual", "violence", "hate", "harassment", "illicit", "profanity"]
    while len(rows) < TERMS:
        word = "".join(generator.choice(ALPHABET) for _ in range(generator.randint(6, 10)))
        rows.append((generator.choice(categories), generator.choice(["stem", "word"]), word, False))
    return rows


def text_of(length: int) -> str:
    sentence = (
        "Решите уравнение x^2 + 3x - 4 = 0 и объясните каждый шаг: сначала найдём дискриминант, "
        "потом корни, и проверим ответ подстановкой. Stop and check the units first. "
    )
    return (sentence * (length // len(sentence) + 1))[:length]


def timed_ms(function, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat * 1000


def main() -> None:
    import django

    django.setup()
    from django.test.utils import override_settings

    from safety import rules, services

    rows = lists()
    matcher = rules.build(rows)
    long_text, short_text, reply = text_of(8000), text_of(200), text_of(2000)
    assert matcher.categories(long_text) == {}, "the benchmark text must be clean: every term is checked"
    pieces = [reply[i : i + 5] for i in range(0, len(reply), 5)]

    def stream() -> None:
        check = services.StreamCheck()
        check.matcher = matcher
        for piece in pieces:
            check.feed(piece)

    results: dict[str, list[float]] = {"long": [], "short": [], "stream": [], "whole": []}
    with override_settings(MODERATION_PROVIDERS=["rules"]):
        for _ in range(ROUNDS):
            results["long"].append(timed_ms(lambda: matcher.categories(long_text), 100))
            results["short"].append(timed_ms(lambda: matcher.categories(short_text), 1000))
            results["stream"].append(timed_ms(stream, 20))
            results["whole"].append(timed_ms(lambda: matcher.categories(reply), 200))
    median = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"{len(rows)} terms ({sum(1 for r in rows if r[1] == 'pattern')} patterns), {ROUNDS} rounds, medians"
    )
    print(
        f"8 000 characters:          {median['long']:.3f} ms "
        f"({median['long'] / TARGET_MS:.2f} x the 2 ms target)"
    )
    print(f"200 characters (a send):   {median['short'] * 1000:.0f} µs")
    print(
        f"2 000-character reply streamed in {len(pieces)} pieces: {median['stream']:.3f} ms in all, "
        f"{median['stream'] * 1000 / len(pieces):.1f} µs per piece, "
        f"{median['stream'] / median['whole']:.1f} x one check of the whole reply"
    )


if __name__ == "__main__":
    main()
