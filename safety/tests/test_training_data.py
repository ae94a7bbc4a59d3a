"""Flagged exchanges (unless dismissed) reach no ML output: the training
export, the preference pairs, /ml/feedback/. Erasure and the dashboard."""

import pytest

from chats.models import Message
from conftest import feedback_on
from feedback.tests.test_preference_pairs import items, variants
from feedback.training import training_export_claim, training_lines
from privacy.services import user_erase
from safety.models import Flag
from safety.selectors import daily_counts
from tutor_platform.pseudonyms import student_key

pytestmark = pytest.mark.django_db

ML_FEEDBACK = "/api/v1/ml/feedback/"


@pytest.fixture
def ml(client_for, ml_user):
    return client_for(ml_user)


def flag_exchange(user_message: Message, **fields) -> Flag:
    defaults = {
        "stage": "input", "categories": ["violence"], "category": "violence", "severity": 60, "action": "flag",
        "providers": "rules", "text": user_message.content, "chat": user_message.chat, "message": user_message,
        "exchange": user_message.pk,
    }  # fmt: skip
    return Flag.objects.create(**(defaults | fields))


def test_a_flagged_exchange_is_in_no_ml_output_until_its_flag_is_dismissed(ml, chat, make_exchange):
    _clean_q, clean_a = make_exchange(chat, question="Что такое синус?", answer="Отношение сторон.")
    flagged_q, flagged_a = make_exchange(chat, question="я его застрелю", answer="Давай решать задачу.")
    feedback_on(clean_a, feedback_type="detailed", rating=5, allow_training=True)
    held = feedback_on(flagged_a, feedback_type="detailed", rating=4, allow_training=True)
    worse, better = variants(chat, "Ещё я его застрелю", "Плохо", "Хорошо")
    feedback_on(worse, feedback_type="detailed", rating=1, allow_training=True)
    feedback_on(better, feedback_type="detailed", rating=5, allow_training=True)
    flag = flag_exchange(flagged_q)
    flag_exchange(better.reply_to)

    assert [item["reply"]["content"] for item in ml.get(ML_FEEDBACK).json()["results"]] == [
        "Отношение сторон."
    ]
    assert items(ml) == []
    batch = training_export_claim(by=None)
    assert batch.count == 1 and len(list(training_lines(batch.id))) == 1
    held.refresh_from_db()
    assert held.processed is False  # it waits for the review

    Flag.objects.filter(pk=flag.pk).update(review=Flag.Review.DISMISSED)
    # The export took the clean item (processed); the dismissed one is offered now.
    assert [item["id"] for item in ml.get(ML_FEEDBACK).json()["results"]] == [held.id]
    assert training_export_claim(by=None).count == 1  # now it goes


def test_a_confirmed_flag_keeps_the_exchange_out(ml, chat, make_exchange):
    asked, reply = make_exchange(chat, question="Вопрос", answer="Ответ")
    feedback_on(reply, feedback_type="detailed", rating=5, allow_training=True)
    flag_exchange(asked, review=Flag.Review.CONFIRMED)
    assert ml.get(ML_FEEDBACK).json()["results"] == []
    assert training_export_claim(by=None).count == 0


def test_a_kept_variant_of_a_flagged_exchange_makes_no_selection_pair(ml, chat, user, make_exchange):
    type(user).objects.filter(pk=user.pk).update(allow_training=True)
    kept, _ = variants(chat, "Объясни дроби", "Через пиццу", "Формально", current=0)
    assert len(items(ml)) == 1
    flag_exchange(kept.reply_to, stage="output")
    assert items(ml) == []


def test_an_erased_students_flags_keep_their_review_but_not_text_or_key(chat, user, make_exchange):
    asked, _ = make_exchange(chat, question="я его застрелю", answer="Нет.")
    flag = flag_exchange(asked, student=student_key(user.id), review=Flag.Review.CONFIRMED)

    user_erase(user=user)

    flag.refresh_from_db()
    assert (flag.text, flag.student, flag.chat_id, flag.message_id) == ("", "", None, None)
    assert (flag.categories, flag.review, flag.exchange) == (["violence"], "confirmed", asked.pk)


def test_the_dashboard_counts_flags_per_day_and_category(chat, make_exchange):
    from django.utils import timezone

    asked, _ = make_exchange(chat, question="x", answer="y")
    flag_exchange(asked)
    flag_exchange(asked, categories=["self_harm", "profanity"], category="self_harm")
    Flag.objects.create(stage="output", action="flag", providers="openai (failed)", unchecked=True, text="t")
    today = timezone.localdate()
    assert daily_counts(first=today, last=today) == {
        "violence": [1],
        "self_harm": [1],
        "profanity": [1],
        "unchecked": [1],
    }
    assert daily_counts(first=today, last=today, tutor_id=chat.tutor_id + 1) == {}
