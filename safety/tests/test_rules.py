"""The built-in check against what children type, on the shipped starter lists."""

import pytest

from safety import rules
from safety.models import Term
from safety.rules import build, fold, pattern_error

pytestmark = pytest.mark.django_db


def found(text: str) -> set[str]:
    return set(rules.matcher().categories(text))


@pytest.mark.parametrize(
    "text",
    [
        "Я думаю про суицид",
        "Я ДУМАЮ ПРО СУИЦИД",  # case
        "думаю про cyицид",  # Latin c and y inside a Cyrillic word
        "думаю про су\u200bи\u200dцид",  # zero-width characters
        "думаю про сууууициииид",  # repeated letters
        "думаю про с.у.и.ц.и.д",  # separators inside the word
        "думаю про с-у-и-ц-и-д",
        "думаю про с у и ц и д",  # spaced letters
        "суицидальные мысли",  # a Russian ending on the stem
        "мысли о самоубийстве",
        "хочу покончить с собой",
        "Покончу с собой завтра",  # a pattern
        "не хочу жить",
        "I want to kill myself",
        "I WANT TO KILL MYSELF",
        "thinking about suicide",
    ],
)
def test_self_harm_is_found_however_it_is_typed(text):
    assert found(text) == {"self_harm"}


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Ёбаный стыд", "profanity"),  # ё as е
        ("это пиздец", "profanity"),
        ("what the fuck", "profanity"),
        ("скинь свои голые фото", "sexual"),
        ("где купить мефедрон", "illicit"),
        ("я его застрелю", "violence"),
        ("я тебя убью", "violence"),
        ("ты тупой", "harassment"),
        ("Я решила умереть", "self_harm"),  # phrases spelled out as words, not patterns
        ("где купить травку?", "illicit"),
        ("I'm going to kill him", "violence"),
        ("вскрою себе вены", "self_harm"),  # a pattern
    ],
)
def test_each_category_has_starter_terms_in_both_languages_matched(text, category):
    assert category in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Стрелка часов показывает три",  # 'застрел' is listed, 'стрел' is not
        "Стрелки компаса",
        "Как убить время на перемене?",  # an exception: an idiom
        "Убить двух зайцев одним выстрелом",
        "Niger is a country in West Africa",  # repeats collapse: 'nigger' is a pattern, not a term
        "Секстант измеряет углы",  # 'секс' is a whole word
        "Решите уравнение x*y*e = 30",
        "Произведение 3x и 4x",
        "Сукно и сукровица",  # 'сука' is a whole word
        "We will stabilise the function",
        "A shiitake mushroom",
        "Дерево, стебель, ствол",
        "Застенчивый мальчик",
    ],
)
def test_ordinary_school_text_is_not_flagged(text):
    assert found(text) == set()


def test_folding_is_the_same_for_text_and_terms():
    assert fold("С.У.И.Ц.И.Д") == fold("сууицид") == fold("суицид") == "суицид"
    assert fold("kill yourself") == "kil yourself"  # Latin words keep their letters
    assert fold("ｓｕｉｃｉｄｅ") == "suicide"  # full-width letters


def test_an_invalid_pattern_is_refused_and_skipped():
    assert pattern_error("(unclosed") is not None
    assert pattern_error("a*") is not None  # matches empty text: would flag everything
    assert pattern_error(r"поконч\w* с собой") is None
    matcher = build([("violence", "pattern", "(unclosed", False), ("violence", "stem", "застрел", False)])
    assert set(matcher.categories("застрелю")) == {"violence"}


def test_a_term_saved_applies_to_the_next_check_and_a_deleted_one_stops():
    assert found("контрольная по квадратикам") == set()
    term = Term.objects.create(category="profanity", kind="stem", text="квадратик")
    assert found("контрольная по квадратикам") == {"profanity"}
    term.delete()
    assert found("контрольная по квадратикам") == set()


def test_an_inactive_term_is_not_matched():
    Term.objects.filter(text="суицид").update(is_active=False)
    rules.forget()
    assert found("суицид") == set()


def test_a_change_made_elsewhere_is_seen_once_the_lists_are_looked_at_again(monkeypatch):
    assert found("контрольная по квадратикам") == set()
    Term.objects.bulk_create([Term(category="profanity", kind="stem", text="квадратик")])  # no signal
    assert found("контрольная по квадратикам") == set()  # another process's change: not yet
    monkeypatch.setattr(rules, "RULES_TTL_SECONDS", 0)
    assert found("контрольная по квадратикам") == {"profanity"}
