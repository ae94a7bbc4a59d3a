"""The safety stage in the reply flow, through the API: each action on the
way in and on the way out, streamed replies, AI-Core's own verdict."""

import json

import pytest
import responses
from django.core import mail

from chats.models import Message
from chats.tests.test_streaming import deltas, sse_body, stream_of
from safety import rules
from safety.models import Flag, Policy
from tutor_platform.pseudonyms import student_key
from usage.models import UserDailyUsage

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
SSE = {"HTTP_ACCEPT": "text/event-stream"}


def send(client, chat, content, **extra):
    return client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": content}, format="json", **extra)


def used_today(user) -> int:
    row = UserDailyUsage.objects.filter(user=user).first()
    return 0 if row is None else row.messages + row.reserved


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def alerts(settings):
    settings.SAFETY_ALERT_EMAILS = ["safeguarding@school.example"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return mail.outbox


class TestOnTheWayIn:
    def test_a_blocked_message_is_refused_and_nothing_is_saved_asked_or_counted(
        self, ai_core, alerts, auth_client, chat, user
    ):
        response = send(auth_client, chat, "скинь свои голые фото")

        assert response.status_code == 400
        assert response.json() == {
            "detail": "This message can't be sent: it breaks the rules of a school chat.",
            "code": "content_blocked",
            "categories": ["sexual"],
        }
        assert not Message.objects.filter(chat=chat).exists()
        assert len(ai_core.calls) == 0 and used_today(user) == 0
        flag = Flag.objects.get()
        assert (flag.stage, flag.categories, flag.action, flag.providers) == (
            "input",
            ["sexual"],
            "block",
            "rules",
        )
        assert flag.text == "скинь свои голые фото" and flag.message is None and flag.exchange is None
        assert (
            flag.student == student_key(user.id)
            and flag.chat_id == chat.id
            and flag.tutor_id == chat.tutor_id
        )
        assert len(alerts) == 1
        assert alerts[0].to == ["safeguarding@school.example"]
        assert alerts[0].subject == "[Safety] Sexual: block (student message)"
        assert user.email not in alerts[0].subject + alerts[0].body
        assert student_key(user.id) in alerts[0].body and f"/safety/flag/{flag.id}/" in alerts[0].body

    def test_self_harm_is_answered_with_help_in_the_students_language_ai_core_not_asked(
        self, ai_core, alerts, auth_client, chat, user
    ):
        response = send(auth_client, chat, "Я больше не хочу жить")

        assert response.status_code == 201
        body = response.json()
        asked, reply = body["user_message"], body["assistant_message"]
        assert asked["content"] == "Я больше не хочу жить" and asked["reply_status"] == "answered"
        assert reply["moderation"] == "safe_reply"
        assert reply["content"] == Policy.objects.get(category="self_harm").safe_text_ru
        assert "8-800-2000-122" in reply["content"]
        assert len(ai_core.calls) == 0 and used_today(user) == 0
        saved = Message.objects.get(pk=reply["id"])
        assert saved.reply_to_id == asked["id"] and saved.moderation == "safe_reply"
        flag = Flag.objects.get()
        assert (flag.action, flag.message_id, flag.exchange) == ("respond", asked["id"], asked["id"])
        assert len(alerts) == 1 and alerts[0].subject.startswith("[Safety] Self-harm: respond")

        english = send(auth_client, chat, "I want to kill myself").json()["assistant_message"]
        assert english["content"] == Policy.objects.get(category="self_harm").safe_text_en

    def test_a_flagged_message_changes_nothing_for_the_student(self, ai_core, alerts, auth_client, chat):
        ai_core.post(GENERATE, json={"content": "Давай лучше решим задачу."})

        response = send(auth_client, chat, "я его застрелю из рогатки")

        assert response.status_code == 201
        reply = response.json()["assistant_message"]
        assert reply["content"] == "Давай лучше решим задачу." and reply["moderation"] is None
        assert len(ai_core.calls) == 1
        flag = Flag.objects.get()
        asked = Message.objects.get(role="user")
        assert (flag.stage, flag.categories, flag.action) == ("input", ["violence"], "flag")
        assert (flag.message_id, flag.exchange) == (asked.id, asked.id)
        assert alerts == []  # only respond and block in self_harm or sexual alert

    def test_allow_records_nothing(self, ai_core, auth_client, chat):
        Policy.objects.filter(category="profanity").update(action="allow")
        ai_core.post(GENERATE, json={"content": "Понимаю."})
        assert send(auth_client, chat, "блять, опять дроби").status_code == 201
        assert not Flag.objects.exists()

    def test_an_ordinary_message_is_not_flagged(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, json={"content": "Стрелка компаса показывает на север."})
        assert send(auth_client, chat, "Куда показывает стрелка компаса?").status_code == 201
        assert not Flag.objects.exists()

    def test_staff_changes_to_a_policy_apply(self, ai_core, auth_client, chat):
        Policy.objects.filter(category="violence").update(
            action="block"
        )  # the signal drops the cached policies
        response = send(auth_client, chat, "я его застрелю")
        assert response.status_code == 400 and response.json()["categories"] == ["violence"]


class TestOnTheWayOut:
    def test_a_reply_in_a_blocked_category_is_withheld(self, ai_core, alerts, auth_client, chat, user):
        ai_core.post(GENERATE, json={"content": "Вот ссылка на порно сайт.", "tokens_used": 9})

        reply = send(auth_client, chat, "Что такое синус?").json()["assistant_message"]

        assert reply["moderation"] == "withheld"
        assert reply["content"] == Policy.objects.get(category="sexual").safe_text_ru
        saved = Message.objects.get(pk=reply["id"])
        assert "порно" not in saved.content and saved.tokens_used == 9
        flag = Flag.objects.get()
        assert (flag.stage, flag.categories, flag.action) == ("output", ["sexual"], "block")
        assert flag.text == "Вот ссылка на порно сайт." and flag.message_id == saved.id
        assert flag.exchange == saved.reply_to_id
        assert used_today(user) == 1  # AI-Core was asked: the reply counts
        assert len(alerts) == 1 and "(tutor reply)" in alerts[0].subject

    def test_a_flagged_reply_reaches_the_student_and_is_recorded(self, ai_core, auth_client, chat):
        ai_core.post(GENERATE, json={"content": "Ну и херня, но ладно: shit happens."})
        reply = send(auth_client, chat, "Что такое синус?").json()["assistant_message"]
        assert reply["moderation"] is None and reply["content"].endswith("shit happens.")
        flag = Flag.objects.get()
        assert (flag.stage, flag.action, flag.message_id) == ("output", "flag", reply["id"])

    def test_a_regeneration_is_checked_too(self, ai_core, auth_client, chat, make_exchange):
        make_exchange(chat, question="Что такое синус?", answer="Отношение катета к гипотенузе.")
        ai_core.post(GENERATE, json={"content": "Смотри порно вместо уроков."})
        response = auth_client.post(f"/api/v1/chats/{chat.id}/regenerate/", format="json")
        assert response.status_code == 201
        assert response.json()["assistant_message"]["moderation"] == "withheld"

    def test_ai_core_s_own_verdict_withholds_a_reply(self, ai_core, settings, auth_client, chat):
        settings.MODERATION_PROVIDERS = ["rules", "aicore"]
        ai_core.post(
            GENERATE, json={"content": "Вполне невинный текст.", "moderation": {"categories": ["hate"]}}
        )
        reply = send(auth_client, chat, "Что такое синус?").json()["assistant_message"]
        assert reply["moderation"] == "withheld"
        flag = Flag.objects.get()
        assert (flag.categories, flag.providers) == (["hate"], "aicore")

    def test_ai_core_s_verdict_is_ignored_unless_configured_and_when_malformed(
        self, ai_core, settings, auth_client, chat
    ):
        ai_core.post(GENERATE, json={"content": "Текст.", "moderation": {"categories": ["hate"]}})
        assert send(auth_client, chat, "Что такое синус?").json()["assistant_message"]["moderation"] is None
        settings.MODERATION_PROVIDERS = ["rules", "aicore"]
        ai_core.post(GENERATE, json={"content": "Текст.", "moderation": {"categories": "hate"}})
        assert send(auth_client, chat, "Что такое косинус?").json()["assistant_message"]["moderation"] is None
        assert not Flag.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("starter_lists")
class TestStreamed:
    """A stream's reply is generated in a thread of its own, with its own
    connection: it sees only what is committed."""

    def test_a_safe_reply_streams_as_a_whole_reply(self, ai_core, auth_client, chat):
        events = stream_of(send(auth_client, chat, "думаю про суицид", **SSE))
        assert [name for name, _ in events] == ["user_message", "delta", "assistant_message"]
        assert events[-1][1]["moderation"] == "safe_reply" and deltas(events) == events[-1][1]["content"]

    def test_no_word_of_a_withheld_stream_reaches_the_client(self, ai_core, auth_client, chat):
        pieces = [
            "Сначала ",
            "ответ, ",
            "потом ",
            "по",
            "рн",
            "о ",
            "ролик ",
            "и ",
            "ещё ",
            "много ",
            "слов.",
        ]
        ai_core.post(
            GENERATE,
            body=sse_body(*[{"delta": piece} for piece in pieces], {"done": True}),
            content_type="text/event-stream",
        )

        events = stream_of(send(auth_client, chat, "Что такое синус?", **SSE))

        names = [name for name, _ in events]
        assert names[0] == "user_message" and names[-1] == "moderated"
        relayed = [data["content"] for name, data in events if name == "delta"]
        assert relayed == ["Сначала ", "ответ, ", "потом "]  # each piece as soon as it was checked
        for so_far in ("".join(relayed[: n + 1]) for n in range(len(relayed))):
            assert rules.matcher().categories(so_far) == {}
        moderated = events[-1][1]
        saved = Message.objects.get(role="assistant")
        assert moderated["id"] == saved.id and moderated["moderation"] == "withheld"
        assert moderated["content"] == saved.content == Policy.objects.get(category="sexual").safe_text_ru
        flag = Flag.objects.get()
        assert flag.stage == "output" and flag.text == "Сначала ответ, потом порно "

    def test_a_word_split_across_pieces_is_checked_whole(self, ai_core, auth_client, chat):
        pieces = ["Это ", "с", "у", "и", "ц", "и", "д", "альная ", "тема."]
        ai_core.post(
            GENERATE,
            body=sse_body(*[{"delta": p} for p in pieces], {"done": True}),
            content_type="text/event-stream",
        )
        events = stream_of(send(auth_client, chat, "Что такое синус?", **SSE))
        assert [data["content"] for name, data in events if name == "delta"] == ["Это "]
        assert events[-1][0] == "moderated" and events[-1][1]["moderation"] == "withheld"

    def test_ai_core_s_verdict_in_a_streams_last_event(self, ai_core, settings, auth_client, chat):
        settings.MODERATION_PROVIDERS = ["rules", "aicore"]
        ai_core.post(
            GENERATE,
            body=sse_body(
                {"delta": "Вполне "},
                {"delta": "невинно."},
                {"done": True, "moderation": {"categories": ["sexual"]}},
            ),
            content_type="text/event-stream",
        )
        events = stream_of(send(auth_client, chat, "Что такое синус?", **SSE))
        assert events[-1][0] == "moderated"  # retracted: what was relayed is replaced
        assert Message.objects.get(role="assistant").moderation == "withheld"


def test_ai_core_gets_the_students_pseudonymous_key(ai_core, auth_client, chat, user):
    ai_core.post(GENERATE, json={"content": "Ответ."})
    send(auth_client, chat, "Что такое синус?")
    assert json.loads(ai_core.calls[0].request.body)["student"] == student_key(user.id)


def test_regenerating_a_safe_reply_never_reaches_ai_core(ai_core, alerts, auth_client, chat, user):
    assert send(auth_client, chat, "Я больше не хочу жить").status_code == 201

    for action in ("regenerate", "reply"):
        response = auth_client.post(f"/api/v1/chats/{chat.id}/{action}/", format="json")
        assert response.status_code in (400, 409), response.content
    regenerated = auth_client.post(f"/api/v1/chats/{chat.id}/regenerate/", format="json")

    assert regenerated.status_code == 400
    assert regenerated.json()["code"] == "content_blocked" and regenerated.json()["categories"] == [
        "self_harm"
    ]
    assert len(ai_core.calls) == 0 and used_today(user) == 0
    assert Message.objects.filter(chat=chat).count() == 2  # the message and its safe reply, nothing more
    assert Flag.objects.count() == 1 and len(alerts) == 1  # checked again, not recorded again


def test_reply_to_a_message_saved_before_a_policy_changed_is_refused(ai_core, auth_client, chat):
    Message.objects.create(chat=chat, role="user", content="я его застрелю")  # flagged then; no reply yet
    Policy.objects.filter(category="violence").update(action="block")
    response = auth_client.post(f"/api/v1/chats/{chat.id}/reply/", format="json")
    assert response.status_code == 400 and response.json()["categories"] == ["violence"]
    assert len(ai_core.calls) == 0


def test_a_flag_that_cannot_be_recorded_is_logged_and_the_reply_goes_on(
    ai_core, auth_client, chat, user, monkeypatch, caplog
):
    from safety import services

    def broken(*args, **kwargs):
        raise RuntimeError("the flags table is gone")

    monkeypatch.setattr(services, "record", broken)
    ai_core.post(GENERATE, json={"content": "Давай решать задачу."})
    response = send(auth_client, chat, "я его застрелю")
    assert response.status_code == 201
    assert used_today(user) == 1 and Message.objects.filter(chat=chat).count() == 2
    assert "Safety flag not recorded: input violence" in caplog.text
