"""Issue 15: the export for training takes consented items only, each once,
with what training needs on every line."""

import io
import json
import uuid

import psycopg
import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.roles import CONTENT_EDITORS
from chats.models import Message
from conftest import feedback_on, requires_postgresql, run_in_threads
from feedback.models import Feedback
from feedback.training import training_export_claim, training_lines
from tutor_platform.pseudonyms import student_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def ml_admin(client, make_user):
    member = make_user(is_staff=True)
    member.groups.add(Group.objects.get(name="ML team"))
    client.force_login(member)
    return member


@pytest.fixture
def conversation(chat, make_exchange):
    """Three exchanges; feedback on the last reply carries the first two as its conversation."""
    make_exchange(chat, question="Что такое производная?", answer="Скорость изменения функции")
    make_exchange(chat, question="А интеграл?", answer="Обратная операция")
    return make_exchange(chat, question="Пример?", answer="∫2x dx = x² + C")


def export_action(client, items) -> list[dict]:
    response = client.post(
        "/admin/feedback/feedback/",
        {"action": "export_for_training", "_selected_action": [str(f.pk) for f in items]},
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_each_line_carries_what_training_needs(
    client, ml_admin, user, chat, tutor, auth_client, conversation
):
    _asked, reply = conversation
    body = {"message": reply.pk, "feedback_type": "detailed", "rating": 4, "improvement_text": "Ещё пример",
            "allow_training": True}  # fmt: skip
    assert auth_client.post("/api/v1/feedback/", body, format="json").status_code == 201

    (line,) = export_action(client, Feedback.objects.all())

    assert set(line) == {
        "feedback_id", "batch", "student", "course", "tutor", "tutor_version", "experiment_arm",
        "conversation", "student_message", "student_attachments", "reply", "learner", "feedback",
    }  # fmt: skip
    assert line["experiment_arm"] is None  # no experiment ran
    assert line["student"] == student_key(user.pk)
    assert line["course"] == {"id": tutor.course_id, "name": "Математика"}
    assert line["tutor"] == {"id": tutor.pk, "name": "Анна"}
    assert line["tutor_version"] == {
        "number": 1,
        "system_prompt": tutor.system_prompt,
        "model_id": "math-v1",
        "knowledge_base_id": "kb-math",
    }
    assert line["conversation"] == [
        {"role": "user", "content": "Что такое производная?"},
        {"role": "assistant", "content": "Скорость изменения функции"},
        {"role": "user", "content": "А интеграл?"},
        {"role": "assistant", "content": "Обратная операция"},
    ]
    assert line["student_message"] == "Пример?"
    assert line["reply"]["content"] == "∫2x dx = x² + C"
    assert (line["feedback"]["type"], line["feedback"]["rating"], line["feedback"]["improvement_text"]) == (
        "detailed", 4, "Ещё пример"
    )  # fmt: skip
    raw = json.dumps(line, ensure_ascii=False)
    assert user.email not in raw and '"user":' not in raw and '"prompt"' not in raw


def test_the_conversation_survives_clearing_the_chat(client, ml_admin, auth_client, chat, conversation):
    _asked, reply = conversation
    body = {
        "message": reply.pk,
        "feedback_type": "quick",
        "quick_reaction": "understood",
        "allow_training": True,
    }
    auth_client.post("/api/v1/feedback/", body, format="json")
    auth_client.delete(f"/api/v1/chats/{chat.pk}/messages/")
    assert not Message.objects.exists()
    (line,) = export_action(client, Feedback.objects.all())
    assert len(line["conversation"]) == 4 and line["student_message"] == "Пример?"


def test_only_consented_items_even_when_selected_and_each_only_once(client, ml_admin, chat, make_exchange):
    consented = [feedback_on(make_exchange(chat)[1], allow_training=True) for _ in range(2)]
    private = feedback_on(make_exchange(chat)[1], allow_training=False)

    first = export_action(client, [*consented, private])

    assert sorted(line["feedback_id"] for line in first) == sorted(f.pk for f in consented)
    for feedback in consented:
        feedback.refresh_from_db()
        assert (feedback.processed, feedback.processed_by) == (True, ml_admin)
    private.refresh_from_db()
    assert private.processed is False
    assert export_action(client, [*consented, private]) == []  # already exported: never twice


def test_content_editors_cannot_export(client, make_staff, chat, make_exchange):
    editor = make_staff(CONTENT_EDITORS)
    client.force_login(editor)
    item = feedback_on(make_exchange(chat)[1], allow_training=True)
    response = client.post(
        "/admin/feedback/feedback/", {"action": "export_for_training", "_selected_action": [str(item.pk)]}
    )
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.processed is False


def test_the_command_exports_all_pending_and_can_write_a_batch_again(tmp_path, chat, make_exchange):
    items = [feedback_on(make_exchange(chat)[1], allow_training=True) for _ in range(3)]
    feedback_on(make_exchange(chat)[1], allow_training=False)
    out = tmp_path / "training.jsonl"

    call_command("export_training_data", output=str(out), stderr=open("/dev/null", "w"))  # noqa: SIM115

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["feedback_id"] for line in lines] == [f.pk for f in items]
    assert Feedback.objects.filter(processed=True).count() == 3
    again = tmp_path / "again.jsonl"
    call_command("export_training_data", output=str(again), batch=lines[0]["batch"])
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    empty = tmp_path / "empty.jsonl"
    call_command("export_training_data", output=str(empty), stderr=open("/dev/null", "w"))  # noqa: SIM115
    assert empty.read_text() == ""
    with pytest.raises(CommandError):
        call_command("export_training_data", batch="not-a-batch")


def test_a_batch_written_again_leaves_out_consent_revoked_since(chat, make_exchange):
    item = feedback_on(make_exchange(chat)[1], allow_training=True)
    batch = training_export_claim(by=None)
    Feedback.objects.filter(pk=item.pk).update(allow_training=False)
    assert list(training_lines(batch.id)) == []
    assert list(training_lines(uuid.uuid4())) == []


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_never_take_the_same_item(user, chat):
    for n in range(200):
        asked = Message.objects.create(chat=chat, role="user", content=f"Вопрос {n}")
        reply = Message.objects.create(chat=chat, role="assistant", content="Ответ", reply_to=asked)
        feedback_on(reply, allow_training=True)

    batches = run_in_threads(2, lambda _i: training_export_claim(by=None))

    exported = [[json.loads(line)["feedback_id"] for line in training_lines(batch.id)] for batch in batches]
    assert sum(batch.count for batch in batches) == 200
    assert not set(exported[0]) & set(exported[1])
    assert sorted(exported[0] + exported[1]) == sorted(Feedback.objects.values_list("pk", flat=True))


def stored_exports(media_root) -> list:
    folder = media_root / "training"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_the_export_goes_to_storage_and_an_empty_night_stores_nothing(chat, make_exchange, media_root):
    """Issue 26, item 2: the export lives in Django's storage, not on one host's disk."""
    items = [feedback_on(make_exchange(chat)[1], allow_training=True) for _ in range(2)]
    quiet = open("/dev/null", "w")  # noqa: SIM115
    call_command("export_training_data", to_storage="training/feedback-2026-12-05.jsonl", stderr=quiet)
    [stored] = stored_exports(media_root)
    assert stored.name == "feedback-2026-12-05.jsonl"
    lines = [json.loads(line) for line in stored.read_text(encoding="utf-8").splitlines()]
    assert [line["feedback_id"] for line in lines] == [f.pk for f in items]
    call_command("export_training_data", to_storage="training/feedback-2026-12-05.jsonl", stderr=quiet)
    assert stored_exports(media_root) == [stored]  # nothing left to export: no second, empty file


@requires_postgresql
def test_a_second_app_server_skips_the_export_while_one_runs_it(chat, make_exchange, media_root):
    from django.db import connection

    from tutor_platform.jobs import _key

    item = feedback_on(make_exchange(chat)[1], allow_training=True)
    other_server = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        other_server.execute("SELECT pg_advisory_lock(%s)", [_key("export_training_data")])
        said = io.StringIO()
        call_command("export_training_data", to_storage="training/f.jsonl", stderr=said)
        assert "Another app server is exporting now" in said.getvalue()
        item.refresh_from_db()
        assert item.processed is False and stored_exports(media_root) == []
        purged = io.StringIO()
        other_server.execute("SELECT pg_advisory_lock(%s)", [_key("purge_expired")])
        call_command("purge_expired", stdout=purged)
        assert "Another app server is cleaning up now" in purged.getvalue()
    finally:
        other_server.close()  # its locks go with its session
    call_command("export_training_data", to_storage="training/f.jsonl", stderr=io.StringIO())
    item.refresh_from_db()
    assert item.processed is True and len(stored_exports(media_root)) == 1


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_servers_exporting_at_once_export_each_item_once(chat, make_exchange, media_root):
    items = [feedback_on(make_exchange(chat)[1], allow_training=True) for _ in range(5)]
    run_in_threads(
        2, lambda i: call_command("export_training_data", to_storage="training/f.jsonl", stderr=io.StringIO())
    )
    [stored] = stored_exports(media_root)
    lines = [json.loads(line) for line in stored.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["feedback_id"] for line in lines) == [f.pk for f in items]
