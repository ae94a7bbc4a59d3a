"""The built-in check: staff's term lists matched against what children type.

Both the text and every term are *folded* the same way first (`fold`):
NFKC and case folding, `ё` as `е`, zero-width characters dropped, Latin
look-alike letters and digits inside a Cyrillic word made Cyrillic
(`cyицид`), separators inside a word dropped (`с.у.и.ц.и.д`), a run of
single letters joined (`с у и ц и д`) and repeated letters collapsed
(`сууууицид`). Stems and words are then found in one pass
(Aho-Corasick, pyahocorasick) and kept only where they start a word (a
stem: any ending, so Russian endings need no list) or are a whole word; an
exception ("убить время") covers what it contains. Patterns are regular
expressions over the text folded without collapsing repeats: a pattern
that starts with letters is searched for quickly, one that starts with an
alternation or `\b` scans every position (bench/moderation.py), so the
starter lists spell such phrases out as words instead
(docs/decisions/2026-12-05-safety-matching.md).

A `Matcher` is built from the database and rebuilt when the lists change:
at once in the process that saved them, within RULES_TTL_SECONDS in others.
"""

import re
import threading
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import ahocorasick
from django.utils.translation import gettext

RULES_TTL_SECONDS = 10.0

_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u2060-\u2063\ufeff]")
# Latin letters and digits a child uses for the Cyrillic letter they look
# like, next to a Cyrillic letter (`cyицид`, `сyкa`).
_LOOKALIKES = str.maketrans("aceopxyk3046", "асеорхукзочб")
_LOOKALIKE_NEXT_TO_CYRILLIC = re.compile(
    r"[aceopxyk3046](?:(?<=[а-я].)[aceopxyk3046]*|[aceopxyk3046]*(?=[а-я]))"
)
_SEPARATORS = re.compile(r"[.\-_*'`|~/\\]+(?=\w)")
# The spaces after a single letter that more single letters follow (`с у и ц и д`).
_SPACED_LETTERS = re.compile(r"[ \t](?<=(?<!\w)\w[ \t])\w(?!\w)(?:[ \t]\w(?!\w))+")
_REPEATS = re.compile(r"([а-яa-z])\1+")

# Each expression above starts with a character class, so that the engine
# skips ahead to where it may match (a leading look-behind or alternation
# made folding 8 000 characters take 1.8 ms instead of about 1 ms,
# bench/moderation.py).


def _inner_separator(match: re.Match[str]) -> str:
    start = match.start()
    return "" if start and match.string[start - 1].isalnum() else match.group()


def _lookalikes(match: re.Match[str]) -> str:
    return match.group().translate(_LOOKALIKES)


def _joined(match: re.Match[str]) -> str:
    return match.group().replace(" ", "").replace("\t", "")


def fold_light(text: str) -> str:
    """The folding patterns see: everything but collapsing repeated letters."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text.casefold().replace("ё", "е"))
    text = _SEPARATORS.sub(_inner_separator, text)
    text = _SPACED_LETTERS.sub(_joined, text)
    text = _LOOKALIKE_NEXT_TO_CYRILLIC.sub(_lookalikes, text)
    return " ".join(text.split())


def collapse(light: str) -> str:
    """`fold_light`'s text with repeated letters collapsed."""
    return _REPEATS.sub(r"\1", light)


def fold(text: str) -> str:
    """The folding stems and words are matched in."""
    return collapse(fold_light(text))


def pattern_error(pattern: str) -> str | None:
    """Why `pattern` cannot be a term (None when it can)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return gettext("Not a valid regular expression: %(error)s.") % {"error": exc}
    if compiled.search(""):
        return gettext("This pattern matches empty text, so it would flag every message.")
    return None


@dataclass(frozen=True)
class Entry:
    category: str
    whole_word: bool
    exception: bool
    length: int


_LEADING_LETTERS = re.compile(r"[^\W\d_]+")


def required_prefix(pattern: str) -> str:
    """The letters every match of `pattern` starts with ("" when not known):
    a text without them cannot match, which `in` tells far faster than the
    regular expression engine (bench/moderation.py)."""
    leading = _LEADING_LETTERS.match(pattern)
    if leading is None or _top_level_alternation(pattern):
        return ""
    letters = leading.group()
    if pattern[leading.end() : leading.end() + 1] in ("*", "?", "{"):
        letters = letters[:-1]  # the last letter may be absent
    return letters if len(letters) >= 2 else ""


def _top_level_alternation(pattern: str) -> bool:
    depth, escaped, in_class = 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


@dataclass(frozen=True)
class Pattern:
    compiled: re.Pattern[str]
    prefix: str  # required_prefix

    def finditer(self, light: str) -> Iterator[re.Match[str]]:
        return iter(()) if self.prefix and self.prefix not in light else self.compiled.finditer(light)


@dataclass
class Matcher:
    """The compiled lists of every active term."""

    automaton: ahocorasick.Automaton | None
    # Each pattern on its own: one that starts with letters is found by a
    # fast literal search, which an alternation of them would defeat.
    patterns: dict[str, list[Pattern]] = field(default_factory=dict)
    exceptions: dict[str, list[Pattern]] = field(default_factory=dict)

    def categories(self, text: str) -> dict[str, list[str]]:
        """Each category found in `text`, with what matched."""
        found: dict[str, list[str]] = defaultdict(list)
        light = fold_light(text)
        if self.automaton is not None:
            folded = collapse(light)
            hits, covered = [], defaultdict(list)
            for end, entries in self.automaton.iter(folded):
                for entry in entries:
                    start = end - entry.length + 1
                    if start > 0 and folded[start - 1].isalnum():
                        continue
                    if entry.whole_word and end + 1 < len(folded) and folded[end + 1].isalnum():
                        continue
                    if entry.exception:
                        covered[entry.category].append((start, end))
                    else:
                        hits.append((entry.category, start, end))
            for category, start, end in hits:
                if not any(a <= start and end <= b for a, b in covered[category]):
                    found[category].append(folded[start : end + 1])
        for category, patterns in self.patterns.items():
            spans = [
                match.span()
                for exception in self.exceptions.get(category, ())
                for match in exception.finditer(light)
            ]
            for pattern in patterns:
                match = next((m for m in pattern.finditer(light) if not _covered(m.span(), spans)), None)
                if match is not None:
                    found[category].append(match.group())
                    break
        return dict(found)


def _covered(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in spans)


def build(terms: list[tuple[str, str, str, bool]]) -> Matcher:
    """A Matcher from (category, kind, text, exception) rows; an invalid
    pattern (the admin refuses them; a bulk load might not) is skipped."""
    automaton = ahocorasick.Automaton()
    keys: dict[str, list[Entry]] = defaultdict(list)
    patterns: dict[str, list[Pattern]] = defaultdict(list)
    exceptions: dict[str, list[Pattern]] = defaultdict(list)
    for category, kind, text, exception in terms:
        if kind == "pattern":
            if pattern_error(text) is None:
                compiled = Pattern(re.compile(text), required_prefix(text))
                (exceptions if exception else patterns)[category].append(compiled)
            continue
        key = fold(text).strip()
        if len(key) >= 2:
            keys[key].append(Entry(category, kind == "word", exception, len(key)))
    for key, entries in keys.items():
        automaton.add_word(key, tuple(entries))
    if keys:
        automaton.make_automaton()
    return Matcher(
        automaton=automaton if keys else None,
        patterns=dict(patterns),
        exceptions=dict(exceptions),
    )


_lock = threading.Lock()
# (when the lists were last looked at, their signature, the Matcher built from them)
_current: tuple[float, tuple[int, object], Matcher] | None = None


def matcher() -> Matcher:
    """The process's Matcher. Every RULES_TTL_SECONDS one query looks at the
    lists' signature (how many, last changed); only a change rebuilds it
    (a few thousand terms take tens of milliseconds)."""
    global _current
    current = _current
    if current is not None and time.monotonic() - current[0] < RULES_TTL_SECONDS:
        return current[2]
    with _lock:
        from django.db.models import Count, Max

        from .models import Term

        if _current is not None and time.monotonic() - _current[0] < RULES_TTL_SECONDS:
            return _current[2]
        seen = Term.objects.aggregate(count=Count("id"), changed=Max("updated_at"))
        signature = (seen["count"], seen["changed"])
        if _current is not None and _current[1] == signature:
            built = _current[2]
        else:
            rows = Term.objects.filter(is_active=True).values_list("category", "kind", "text", "exception")
            built = build(list(rows))
        _current = (time.monotonic(), signature, built)
        return built


def forget() -> None:
    """The lists changed: the next check rebuilds the Matcher."""
    global _current
    _current = None
