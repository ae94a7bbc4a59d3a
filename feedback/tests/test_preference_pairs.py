"""Issue 14: preference pairs for the ML team, from ratings and from selections, consent honoured."""

import json

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from accounts.models import User
from accounts.roles import CONTENT_EDITORS
from chats.models import Message
from conftest import feedback_on
from tutoring.services import TutorContent, tutor_version_save

PAIRS = "/api/v1/ml/preference-pairs/"

pytestmark = pytest.mark.django_db


def variants(chat, question: str, *answers: str, current: int = -1) -> list[Message]:
    """A user message (after one earlier exchange) and its replies; `current` is the kept one."""
    asked = Message.objects.create(chat=chat, role="user", content=question)
    replies = [
        Message.objects.create(
            chat=chat,
            role="assistant",
            content=text,
            reply_to=asked,
            is_current=False,
            tutor_version=chat.tutor.current_version,
        )
        for text in answers
    ]
    Message.objects.filter(pk=replies[current].pk).update(is_current=True)
    return replies


@pytest.fixture
def ml(client_for, ml_user):
    return client_for(ml_user)


@pytest.fixture
def consenting(user):
    User.objects.filter(pk=user.pk).update(allow_training=True)
    return user


def items(ml, **params) -> list[dict]:
    response = ml.get(PAIRS, params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


class TestFromRatings:
    def test_two_differently_rated_variants_make_a_pair(self, ml, chat, make_exchange):
        make_exchange(chat, question="Привет", answer="Здравствуй")
        worse, better = variants(chat, "Что такое синус?", "Не знаю", "Отношение катета к гипотенузе")
        feedback_on(worse, feedback_type="detailed", rating=1, allow_training=True,
                    history=[{"role": "user", "content": "Привет"}, {"role": "assistant", "content": "Здравствуй"}])  # fmt: skip
        feedback_on(better, feedback_type="detailed", rating=5, allow_training=True)

        (pair,) = items(ml)

        assert pair["source"] == "rating"
        assert (pair["chosen"]["content"], pair["chosen"]["rating"]) == ("Отношение катета к гипотенузе", 5)
        assert (pair["rejected"]["content"], pair["rejected"]["rating"]) == ("Не знаю", 1)
        assert pair["chosen"]["tutor_version"] == 1
        assert pair["prompt"][-1] == {"role": "user", "content": "Что такое синус?"}
        assert pair["tutor"] == {"id": chat.tutor_id, "name": "Анна"}
        assert pair["student"].startswith("s_")

    def test_no_pair_without_consent_on_both_or_with_equal_ratings(self, ml, chat):
        a, b = variants(chat, "Вопрос", "Ответ A", "Ответ B")
        feedback_on(a, feedback_type="detailed", rating=1, allow_training=True)
        feedback_on(b, feedback_type="detailed", rating=5, allow_training=False)
        assert items(ml) == []
        c, d = variants(chat, "Ещё вопрос", "Ответ C", "Ответ D")
        feedback_on(c, feedback_type="detailed", rating=3, allow_training=True)
        feedback_on(d, feedback_type="detailed", rating=3, allow_training=True)
        assert items(ml) == []

    def test_a_cleared_chat_keeps_its_pairs(self, ml, chat):
        a, b = variants(chat, "Вопрос", "Плохо", "Хорошо")
        feedback_on(a, feedback_type="detailed", rating=2, allow_training=True)
        feedback_on(b, feedback_type="detailed", rating=4, allow_training=True)
        Message.objects.filter(chat=chat).delete()
        (pair,) = items(ml)
        assert (pair["chosen"]["content"], pair["prompt"][-1]["content"]) == ("Хорошо", "Вопрос")


class TestFromSelections:
    def test_keeping_an_earlier_variant_makes_a_pair_with_consent(self, ml, chat, consenting, make_exchange):
        make_exchange(chat, question="Привет", answer="Здравствуй")
        kept, passed_over = variants(chat, "Объясни дроби", "Через пиццу", "Формально", current=0)

        (pair,) = items(ml)

        assert pair["source"] == "selection"
        assert (pair["chosen"]["content"], pair["rejected"]["content"]) == ("Через пиццу", "Формально")
        assert pair["prompt"] == [
            {"role": "user", "content": "Привет"},
            {"role": "assistant", "content": "Здравствуй"},
            {"role": "user", "content": "Объясни дроби"},
        ]
        assert pair["id"] == f"selection:{kept.pk}:{passed_over.pk}"

    def test_no_pair_without_the_profiles_consent_or_when_the_newest_is_kept(self, ml, chat, user):
        variants(chat, "Объясни дроби", "Через пиццу", "Формально", current=0)
        assert items(ml) == []  # no standing consent
        User.objects.filter(pk=user.pk).update(allow_training=True)
        variants(chat, "Ещё", "Первый", "Второй")  # the newest kept: no preference shown
        assert len(items(ml)) == 1


class TestTheList:
    @pytest.mark.parametrize("count", [1, 50])
    def test_query_count_per_page_is_constant(self, ml, chat, consenting, count, django_assert_num_queries):
        for n in range(count):
            variants(chat, f"Вопрос {n}", "Кратко", "Подробно", current=0)
            a, b = variants(chat, f"Оценка {n}", "Плохо", "Хорошо")
            feedback_on(a, feedback_type="detailed", rating=1, allow_training=True)
            feedback_on(b, feedback_type="detailed", rating=5, allow_training=True)
        # 1 token user, 2-3 permissions, 4 the page's ids (one more than the
        # page: none more here, so no count), 5 feedback rows, 6 messages, 7 the
        # conversations before the selected prompts.
        with django_assert_num_queries(7):
            body = ml.get(PAIRS, {"page_size": 100}).json()
        assert body["count"] == 2 * count
        assert {item["source"] for item in body["results"]} == {"rating", "selection"}

    def test_filters(self, ml, chat, consenting, make_tutor, user):
        variants(chat, "Вопрос", "Первый", "Второй", current=0)
        assert len(items(ml, tutor=chat.tutor_id)) == 1
        assert items(ml, tutor=make_tutor().id) == []
        assert len(items(ml, tutor=chat.tutor_id, tutor_version=1)) == 1
        assert items(ml, tutor_version=2) == []
        assert items(ml, created_since="2999-01-01T00:00:00Z") == []
        for bad in ({"tutor": "x"}, {"created_since": "вчера"}, {"sort": "id"}):
            assert ml.get(PAIRS, bad).status_code == 400

    def test_for_the_ml_team_only(self, client_for, make_staff, auth_client, api_client):
        editor = make_staff(CONTENT_EDITORS)
        assert client_for(editor).get(PAIRS).status_code == 403
        assert auth_client.get(PAIRS).status_code == 403
        assert api_client.get(PAIRS).status_code == 401


class TestDPOExport:
    def test_the_admin_download_and_the_command_give_the_dpo_layout(
        self, client, make_user, chat, consenting, tmp_path
    ):
        tutor_version_save(tutor=chat.tutor, content=TutorContent("Новый промпт", "math-v1", "kb-math"))
        variants(chat, "Объясни дроби", "Через пиццу", "Формально", current=0)
        member = make_user(is_staff=True)
        member.groups.add(Group.objects.get(name="ML team"))
        client.force_login(member)

        response = client.get("/admin/feedback/feedback/preference-pairs.jsonl")
        assert response["Content-Disposition"].startswith("attachment;")
        (line,) = [json.loads(raw) for raw in b"".join(response.streaming_content).decode().splitlines()]
        assert line["prompt"] == [{"role": "user", "content": "Объясни дроби"}]
        assert line["chosen"] == [{"role": "assistant", "content": "Через пиццу"}]
        assert line["rejected"] == [{"role": "assistant", "content": "Формально"}]
        assert (line["source"], line["chosen_tutor_version"]) == ("selection", 2)

        out = tmp_path / "pairs.jsonl"
        call_command("export_preference_pairs", output=str(out))
        assert [json.loads(raw) for raw in out.read_text(encoding="utf-8").splitlines()] == [line]
