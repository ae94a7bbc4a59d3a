"""When files go: history cleared, chat deleted, account erased, uploads
never sent; the storage objects, not only the rows (issue 28)."""

import datetime as dt
import json

import pytest
import time_machine
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import User
from attachments import links
from attachments.models import Attachment, Reference
from conftest import PASSWORD

pytestmark = pytest.mark.django_db


def in_storage(attachment: Attachment) -> bool:
    return attachment.file.storage.exists(attachment.file.name)


@pytest.fixture
def shown(user, chat, make_attachment, make_exchange):
    """Uploads: one only `chat` shows, one another chat shows too, one never sent."""

    def show(attachment: Attachment, in_chat) -> None:
        question, _ = make_exchange(in_chat)
        Reference.objects.create(message=question, attachment=attachment)

    only_here, also_elsewhere, unsent = (make_attachment(user) for _ in range(3))
    show(only_here, chat)
    show(also_elsewhere, chat)
    show(also_elsewhere, chat.__class__.objects.create(user=user, tutor=chat.tutor, title="Другой"))
    return only_here, also_elsewhere, unsent


@pytest.mark.parametrize("how", ["clear", "delete"])
def test_what_only_the_chat_showed_goes_with_it(
    auth_client, chat, shown, how, django_capture_on_commit_callbacks
):
    only_here, also_elsewhere, unsent = shown
    with django_capture_on_commit_callbacks(execute=True):
        if how == "clear":
            assert auth_client.delete(f"/api/v1/chats/{chat.pk}/messages/").status_code == 204
        else:
            assert auth_client.delete(f"/api/v1/chats/{chat.pk}/").status_code == 204
    assert not Attachment.objects.filter(pk=only_here.pk).exists() and not in_storage(only_here)
    assert in_storage(also_elsewhere) and in_storage(unsent)
    assert set(Attachment.objects.values_list("pk", flat=True)) == {also_elsewhere.pk, unsent.pk}


def test_erasure_deletes_every_file_of_the_user(
    auth_client, user, other_user, shown, make_attachment, django_capture_on_commit_callbacks
):
    theirs = make_attachment(other_user)
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            auth_client.delete("/api/v1/auth/me/", {"password": PASSWORD}, format="json").status_code == 204
        )
    assert not User.objects.filter(pk=user.pk).exists()
    assert not any(in_storage(attachment) for attachment in shown)
    assert list(Attachment.objects.all()) == [theirs] and in_storage(theirs)


def test_a_rolled_back_erasure_keeps_the_files(user, shown, monkeypatch, django_capture_on_commit_callbacks):
    from privacy import services

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "_admin_log_scrub", fail)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        services.user_erase(user=user)
    assert all(in_storage(attachment) for attachment in shown)


def test_purge_expired_deletes_unsent_uploads_after_the_orphan_hours(
    user, shown, settings, make_attachment, django_capture_on_commit_callbacks
):
    settings.ATTACHMENT_ORPHAN_HOURS = 24
    only_here, also_elsewhere, old_unsent = shown
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    with time_machine.travel(later, tick=False):
        fresh_unsent = make_attachment(user)
        with django_capture_on_commit_callbacks(execute=True):
            call_command("purge_expired", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert not Attachment.objects.filter(pk=old_unsent.pk).exists() and not in_storage(old_unsent)
    assert all(in_storage(kept) for kept in (only_here, also_elsewhere, fresh_unsent))


def test_the_export_lists_uploads_with_links_that_work(auth_client, user, other_user, make_attachment):
    mine = make_attachment(user, name="мой.png")
    make_attachment(other_user, name="чужой.png")
    response = auth_client.get("/api/v1/auth/me/export/")
    document = json.loads(b"".join(response.streaming_content))
    [listed] = document["attachments"]
    assert listed["id"] == mine.pk and listed["name"] == "мой.png"
    assert listed["url"] == links.signed_url(mine.pk)
    fetched = APIClient().get(listed["url"])
    assert fetched.status_code == 200
    assert b"".join(fetched.streaming_content) == mine.file.open("rb").read()


@pytest.mark.django_db(transaction=True)
def test_free_form_attachments_of_old_messages_move_to_metadata(chat, make_exchange):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from chats.models import Message

    make_exchange(chat)
    executor = MigrationExecutor(connection)
    executor.migrate([("chats", "0007_message_moderation")])
    old = executor.loader.project_state([("chats", "0007_message_moderation")]).apps
    free_form = [{"type": "image", "url": "https://cdn.example.com/task.png", "name": "задача.png"}]
    old.get_model("chats", "Message").objects.filter(role="user").update(attachments=free_form)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    question = Message.objects.get(role="user")
    assert question.attachments == []
    assert question.metadata["legacy_attachments"] == free_form
    assert Message.objects.get(role="assistant").attachments == []
