"""Issue 29: the learner context. The profile, the teaching mode, the intent
and the struggle estimate reach AI-Core (the fake one records every
request) on every kind of ask, are stored on the reply, and reach the ML
team's outputs."""

import json

import pytest
import responses
from django.core.management import call_command

from accounts.models import User
from chats.models import Message
from conftest import PASSWORD, feedback_on, tutor_admin_form
from progress.models import Progress
from usage.models import TutorDailyUsage
from usage.services import rebuild

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
ME = "/api/v1/auth/me/"


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GENERATE, json={"content": "Подумайте: что известно?", "tokens_used": 5})
        yield mock


def asked(mock) -> list[dict]:
    """The learner block of each call AI-Core got, in order."""
    return [json.loads(call.request.body)["learner"] for call in mock.calls if call.request.url == GENERATE]


def send(client, chat, content="Как решить x² − 5x + 6 = 0?", **body):
    return client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": content, **body}, format="json")


class TestProfile:
    def test_the_learner_profile_is_set_shown_and_cleared(self, auth_client, user):
        learner = {"grade": 7, "level": "school", "language": "ru", "goals": "Сдать ОГЭ по математике"}
        changed = auth_client.patch(ME, {"learner": learner}, format="json")
        assert changed.status_code == 200, changed.content
        assert changed.json()["learner"] == learner
        assert auth_client.get(ME).json()["learner"] == learner
        user.refresh_from_db()
        assert (user.learner_grade, user.learner_level, user.learner_language) == (7, "school", "ru")
        # A part alone changes only that part; null clears it.
        partly = auth_client.patch(ME, {"learner": {"grade": None, "language": None}}, format="json").json()
        assert partly["learner"] == {**learner, "grade": None, "language": None}

    @pytest.mark.parametrize(
        ("learner", "field"),
        [
            ({"grade": 0}, "grade"),
            ({"grade": 12}, "grade"),
            ({"grade": "7"}, "grade"),
            ({"grade": True}, "grade"),
            ({"level": "phd"}, "level"),
            ({"language": "de"}, "language"),
            ({"goals": "я" * 501}, "goals"),
            ({"goals": 5}, "goals"),
            ({"mood": "sad"}, "mood"),
        ],
    )
    def test_a_bad_value_is_a_400_naming_the_field_and_saves_nothing(self, auth_client, user, learner, field):
        before = User.objects.values().get(pk=user.pk)
        response = auth_client.patch(
            ME, {"learner": {"grade": 5, **learner}, "full_name": "Новое"}, format="json"
        )
        assert response.status_code == 400
        assert field in response.json()["learner"]
        assert User.objects.values().get(pk=user.pk) == before

    def test_learner_must_be_an_object(self, auth_client):
        response = auth_client.patch(ME, {"learner": "7 класс"}, format="json")
        assert response.status_code == 400 and "learner" in response.json()

    def test_the_profile_is_in_the_export_and_gone_with_the_account(self, auth_client, user):
        auth_client.patch(ME, {"learner": {"grade": 9, "goals": "ЕГЭ"}}, format="json")
        exported = json.loads(b"".join(auth_client.get("/api/v1/auth/me/export/").streaming_content))
        assert exported["profile"]["learner"] == {"grade": 9, "level": None, "language": None, "goals": "ЕГЭ"}
        erased = auth_client.delete(ME, {"password": PASSWORD}, format="json")
        assert erased.status_code == 204, erased.content
        assert not User.objects.filter(learner_goals="ЕГЭ").exists()


class TestTheBlock:
    @pytest.mark.django_db(transaction=True)  # the streamed reply is saved by a thread of its own
    def test_every_kind_of_ask_carries_the_block(self, auth_client, user, chat, ai_core):
        auth_client.patch(
            ME, {"learner": {"grade": 8, "level": "school", "goals": "Понять дроби"}}, format="json"
        )
        Progress.objects.create(user=user, tutor=chat.tutor, total_minutes=42)
        assert send(auth_client, chat, intent="hint").status_code == 201
        streamed = auth_client.post(
            f"/api/v1/chats/{chat.pk}/messages/", {"content": "А дальше?", "intent": "next_step"},
            format="json", HTTP_ACCEPT="text/event-stream",
        )  # fmt: skip
        b"".join(streamed.streaming_content)
        assert auth_client.post(f"/api/v1/chats/{chat.pk}/regenerate/").status_code == 201
        failed = send(auth_client, chat, "Проверьте: x = 2 и x = 3", intent="check_answer")
        ai_core.replace(responses.POST, GENERATE, json={"content": "Верно."})
        if failed.status_code != 201:
            pytest.fail(failed.content)
        ai_core.replace(responses.POST, GENERATE, status=503)
        assert send(auth_client, chat, "Покажите решение", intent="show_solution").status_code == 502
        ai_core.replace(responses.POST, GENERATE, json={"content": "Решение: ..."})
        assert auth_client.post(f"/api/v1/chats/{chat.pk}/reply/").status_code == 201

        blocks = asked(ai_core)
        assert [block["intent"] for block in blocks] == [
            "hint", "next_step", "next_step", "check_answer", "show_solution", "show_solution"
        ]  # fmt: skip
        for block in blocks:
            assert block["profile"] == {
                "grade": 8,
                "level": "school",
                "language": None,
                "goals": "Понять дроби",
            }
            assert block["teaching_mode"] == "socratic" and block["progress_minutes"] == 42
            assert set(block["struggle"]) == {"level", "score", "evidence"}
        # Stored on each reply as sent (the ML team's), never shown to the student.
        replies = Message.objects.filter(role="assistant").order_by("id")
        assert [reply.metadata["learner"] for reply in replies] == [
            blocks[0],
            blocks[1],
            blocks[2],
            blocks[3],
            blocks[5],
        ]
        page = auth_client.get(f"/api/v1/chats/{chat.pk}/messages/").json()["results"]
        assert all("learner" not in message["metadata"] for message in page)
        assert [m["intent"] for m in page if m["role"] == "user"] == [
            "hint", "next_step", "check_answer", "show_solution"
        ]  # fmt: skip
        assert all(m["intent"] is None for m in page if m["role"] == "assistant")

    def test_an_unknown_intent_is_a_400_and_saves_nothing(self, auth_client, chat, ai_core):
        response = send(auth_client, chat, intent="do_my_homework")
        assert response.status_code == 400 and "intent" in response.json()
        assert not Message.objects.exists() and asked(ai_core) == []

    def test_the_versions_teaching_mode_is_sent_and_the_stub_names_it(self, auth_client, chat, settings):
        version = chat.tutor.current_version
        type(version).objects.filter(pk=version.pk).update(teaching_mode="hints")
        reply = send(auth_client, chat, intent="hint").json()["assistant_message"]["content"]
        assert "Режим: hints; просьба: hint; затруднения: none." in reply


class TestTeachingMode:
    def test_a_mode_change_alone_is_a_new_version_shown_in_the_comparison(self, client, admin_user, tutor):
        client.force_login(admin_user)
        page = client.get(f"/admin/tutoring/tutor/{tutor.pk}/change/").content.decode()
        assert 'name="teaching_mode"' in page and '<option value="socratic" selected>' in page
        saved = client.post(
            f"/admin/tutoring/tutor/{tutor.pk}/change/", tutor_admin_form(tutor, teaching_mode="direct")
        )
        assert saved.status_code == 302
        assert list(tutor.versions.order_by("number").values_list("number", "teaching_mode")) == [
            (1, "socratic"), (2, "direct")
        ]  # fmt: skip
        compared = client.get(f"/admin/tutoring/tutor/{tutor.pk}/versions/compare/?a=1&b=2").content.decode()
        assert "<code>socratic</code>" in compared and "<code>direct</code>" in compared
        # A mode that is not one is refused, and no version is made.
        refused = client.post(
            f"/admin/tutoring/tutor/{tutor.pk}/change/", tutor_admin_form(tutor, teaching_mode="lecture")
        )
        assert refused.status_code == 200 and tutor.versions.count() == 2

    def test_the_try_it_panel_asks_with_the_drafts_mode(self, client, staff_in, tutor, settings):
        settings.AI_CORE_URL = "stub"
        staff_in("Content editors")
        body = {
            "question": "Как решать x² = 4?",
            "system_prompt": "Черновик",
            "model_id": "m",
            "teaching_mode": "hints",
        }
        answer = client.post(f"/admin/tutoring/tutor/{tutor.pk}/try/", body).json()
        assert "Режим: hints; просьба: question" in answer["draft"]["content"]
        assert "Режим: socratic; просьба: question" in answer["saved"]["content"]


def struggle(ai_core) -> dict:
    return asked(ai_core)[-1]["struggle"]


class TestStruggle:
    def test_it_rises_with_each_kind_of_evidence_and_falls_with_understood(
        self, auth_client, user, chat, ai_core
    ):
        send(auth_client, chat, "Что такое дробь?")
        assert struggle(ai_core) == {"level": "none", "score": 0.0, "evidence": []}
        first = Message.objects.filter(role="assistant").latest("id")
        feedback_on(first, feedback_type="quick", quick_reaction="too_hard")
        send(auth_client, chat, "Что такое дробь? Не понимаю")  # asked again in other words
        assert struggle(ai_core)["evidence"] == [
            {"signal": "too_hard", "count": 1},
            {"signal": "asked_again", "count": 1},
        ]
        assert struggle(ai_core)["level"] == "some"
        second = Message.objects.filter(role="assistant").latest("id")
        feedback_on(second, feedback_type="detailed", rating=1)
        send(auth_client, chat, "Покажите решение", intent="show_solution")
        high = struggle(ai_core)
        assert high["level"] == "high" and high["score"] == 1.0
        assert {"signal": "low_rating", "count": 1} in high["evidence"]
        assert {"signal": "show_solution", "count": 1} in high["evidence"]
        # Each piece counts for what it weighs: a regeneration, more examples, a hint.
        auth_client.post(f"/api/v1/chats/{chat.pk}/regenerate/")
        assert {"signal": "regenerated", "count": 1} in struggle(ai_core)["evidence"]
        # `understood` on the replies takes the evidence back down.
        unrated = Message.objects.filter(role="assistant").exclude(feedback__feedback_type="quick")
        for reply in unrated:
            feedback_on(reply, feedback_type="quick", quick_reaction="understood")
        send(auth_client, chat, "Спасибо, теперь ясно. А что такое процент?")
        eased = struggle(ai_core)
        assert eased["score"] < high["score"]
        assert {"signal": "understood", "count": len(unrated)} in eased["evidence"]

    @pytest.mark.parametrize(
        ("evidence", "score"),
        [("too_hard", 0.33), ("need_more_examples", 0.17), ("low_rating", 0.25), ("hint", 0.17)],
    )
    def test_each_signal_weighs_what_the_module_says(self, auth_client, chat, ai_core, evidence, score):
        intent = "hint" if evidence == "hint" else "question"
        send(auth_client, chat, "Первый вопрос про синус")
        reply = Message.objects.get(role="assistant")
        if evidence in ("too_hard", "need_more_examples"):
            feedback_on(reply, feedback_type="quick", quick_reaction=evidence)
        elif evidence == "low_rating":
            feedback_on(reply, feedback_type="detailed", rating=2)
        send(auth_client, chat, "Совсем другое: расскажите о косинусе", intent=intent)
        assert struggle(ai_core) == {"level": "some" if score >= 0.25 else "none", "score": score,
                                     "evidence": [{"signal": evidence, "count": 1}]}  # fmt: skip

    def test_old_evidence_ages_out_of_the_window(self, auth_client, chat, ai_core, settings):
        settings.AI_STRUGGLE_WINDOW = 2
        send(auth_client, chat, "Вопрос один про логарифмы")
        feedback_on(Message.objects.get(role="assistant"), feedback_type="quick", quick_reaction="too_hard")
        send(auth_client, chat, "Вопрос два: производная синуса")
        assert struggle(ai_core)["evidence"] == [{"signal": "too_hard", "count": 1}]  # still in the window
        send(auth_client, chat, "Вопрос три: площадь круга")
        assert struggle(ai_core) == {"level": "none", "score": 0.0, "evidence": []}  # aged out

    def test_the_same_words_in_another_order_are_the_same_question_and_others_are_not(
        self, auth_client, chat, ai_core
    ):
        send(auth_client, chat, "Как найти площадь треугольника?")
        send(auth_client, chat, "площадь треугольника как найти")
        assert struggle(ai_core)["evidence"] == [{"signal": "asked_again", "count": 1}]
        send(auth_client, chat, "Чему равен корень из двух?")
        assert struggle(ai_core)["evidence"] == [{"signal": "asked_again", "count": 1}]  # no new one


class TestForTheMLTeam:
    def test_the_block_is_in_ml_items_the_export_and_the_statistics(
        self, auth_client, client_for, ml_user, chat, ai_core, tmp_path
    ):
        send(auth_client, chat, "Покажите решение", intent="show_solution")
        reply = Message.objects.get(role="assistant")
        rated = auth_client.post(
            "/api/v1/feedback/",
            {"message": reply.pk, "feedback_type": "detailed", "rating": 4, "allow_training": True},
            format="json",
        )
        assert rated.status_code == 201, rated.content
        ml = client_for(ml_user)
        (item,) = ml.get("/api/v1/ml/feedback/").json()["results"]
        assert item["learner"] == item["reply"]["metadata"]["learner"] == reply.metadata["learner"]
        assert item["learner"]["intent"] == "show_solution"
        out = tmp_path / "training.jsonl"
        call_command("export_training_data", "--output", str(out))
        (line,) = out.read_text().splitlines()
        assert json.loads(line)["learner"] == reply.metadata["learner"]
        (version,) = ml.get(f"/api/v1/ml/tutors/{chat.tutor_id}/versions/").json()
        assert version["struggle"] == {"none": 0.0, "some": 1.0, "high": 0.0}

    def test_the_dashboard_counts_replies_to_a_struggling_student(self, auth_client, chat, ai_core):
        send(auth_client, chat, "Покажите решение", intent="show_solution")
        feedback_on(Message.objects.get(role="assistant"), feedback_type="quick", quick_reaction="too_hard")
        send(auth_client, chat, "Покажите решение ещё раз", intent="show_solution")
        assert struggle(ai_core)["level"] == "high"
        day = TutorDailyUsage.objects.get(tutor=chat.tutor)
        assert (day.messages, day.struggling) == (2, 1)
        # Rebuilt from the messages, the count is the same.
        TutorDailyUsage.objects.update(struggling=0)
        rebuild(day.day, day.day)
        assert TutorDailyUsage.objects.get(tutor=chat.tutor).struggling == 1
