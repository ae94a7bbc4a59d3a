"""tutor_platform.prepared: a queryset compiled once gives what the queryset gives."""

import threading
from datetime import datetime

import pytest
from django.db import connection, connections
from django.db.models import Count, F
from django.db.models.functions import Left
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, Message
from tutor_platform import prepared
from tutor_platform.prepared import Prepared


def fields(instance) -> dict:
    return {name: value for name, value in instance.__dict__.items() if name != "_state"}


@pytest.mark.django_db
def test_instances_and_their_joined_objects_are_the_querysets(user, other_user, tutor, chat):
    other = Chat.objects.create(user=other_user, tutor=tutor, title="Чужой")
    Message.objects.create(chat=other, role="user", content="Привет", metadata={"k": "в"})
    built = []

    def build(chat_id, user_id):
        built.append((chat_id, user_id))
        return Chat.objects.select_related("user", "tutor__course").filter(pk=chat_id, user_id=user_id)[:1]

    owned = Prepared(build)
    for chat_id, user_id in ((chat.pk, user.pk), (other.pk, other_user.pk)):
        with CaptureQueriesContext(connection) as queries:
            found = owned.first(chat_id=chat_id, user_id=user_id)
            joined = (found.user.email, found.tutor.name, found.tutor.course.is_active)
        expected = Chat.objects.select_related("user", "tutor__course").get(pk=chat_id)
        assert len(queries) == 1  # the joined objects came with it
        assert fields(found) == fields(expected)
        assert fields(found.user) == fields(expected.user)
        assert fields(found.tutor.course) == fields(expected.tutor.course)
        assert joined == (expected.user.email, expected.tutor.name, expected.tutor.course.is_active)
        assert isinstance(found.created_at, datetime) and found.created_at.tzinfo is not None
    assert len(built) == 1  # compiled once, run twice with other values
    assert owned.first(chat_id=chat.pk, user_id=other_user.pk) is None  # the values are the SQL's


@pytest.mark.django_db
def test_shapes_are_compiled_apart_and_json_and_null_joins_convert(chat):
    for n in range(5):
        Message.objects.create(chat=chat, role="user", content=f"№{n}", attachments=[{"id": n}])
    newest = Prepared(
        lambda limit, chat_id: Message.objects.filter(chat_id=chat_id).select_related("tutor_version")
        .order_by("-id")[:limit]
    )  # fmt: skip
    two, four = newest.all(2, chat_id=chat.pk), newest.all(4, chat_id=chat.pk)
    assert [m.content for m in two] == ["№4", "№3"]
    assert [m.content for m in four] == ["№4", "№3", "№2", "№1"]
    assert four[0].attachments == [{"id": 4}]  # decoded as JSONField decodes it
    with CaptureQueriesContext(connection) as queries:
        assert four[0].tutor_version is None  # a null join, known without a query
    assert len(queries) == 0


@pytest.mark.django_db
def test_a_build_the_sql_cannot_take_is_refused(chat):
    unused = Prepared(lambda chat_id: Message.objects.filter(chat_id=chat.pk))
    with pytest.raises(TypeError, match="must reach the SQL"):
        unused.all(chat_id=chat.pk)
    flat = Prepared(lambda chat_id: Message.objects.filter(chat_id=chat_id).values_list("id", flat=True))
    with pytest.raises(TypeError, match="model instances"):
        flat.all(chat_id=chat.pk)
    annotated = Prepared(lambda chat_id: Message.objects.filter(chat_id=chat_id).annotate(n=Count("id")))
    with pytest.raises(TypeError, match="model instances"):
        annotated.all(chat_id=chat.pk)


@pytest.mark.django_db
def test_values_and_values_list_rows_are_the_querysets(chat, other_user, tutor):
    other = Chat.objects.create(user=other_user, tutor=tutor)
    asked = Message.objects.create(chat=chat, role="user", content="Что такое ряд?", metadata={"a": [1]})
    Message.objects.create(chat=chat, role="assistant", content="Сумма.", reply_to=asked)
    Message.objects.create(chat=other, role="user", content="Чужое")

    def window(chat_id):
        return (
            Message.objects.filter(chat_id=chat_id)
            .order_by("-id")
            .annotate(start=Left("content", 3), owner=F("chat__user_id"))
            .values("id", "role", "start", "metadata", "created_at", "owner")
        )

    def history(chat_id):
        return (
            Message.objects.filter(chat_id=chat_id)
            .order_by("id")
            .values_list("content", "role", "created_at")
        )

    for chat_id in (chat.pk, other.pk):
        assert Prepared(window).all(chat_id=chat_id) == list(window(chat_id))
        assert Prepared(history).all(chat_id=chat_id) == list(history(chat_id))
    rows = Prepared(window).all(chat_id=chat.pk)
    assert rows[1]["start"] == "Что" and rows[1]["metadata"] == {"a": [1]}  # converted as Django converts
    assert rows[0]["created_at"].tzinfo is not None


@pytest.mark.django_db
def test_the_shapes_kept_are_bounded(chat, monkeypatch):
    monkeypatch.setattr(prepared, "SHAPES_MAX", 3)
    newest = Prepared(lambda limit, chat_id: Message.objects.filter(chat_id=chat_id)[:limit])
    for limit in range(1, 8):
        newest.all(limit, chat_id=chat.pk)
    assert 0 < len(newest.compiled) <= 3


@pytest.mark.django_db(transaction=True)
def test_threads_share_the_compiled_query_each_on_its_own_connection(user, tutor):
    chat = Chat.objects.create(user=user, tutor=tutor, title="Общий")
    built, seen = [], {}

    def build(chat_id):
        built.append(chat_id)
        return Chat.objects.select_related("user").filter(pk=chat_id)[:1]

    owned = Prepared(build)
    assert owned.first(chat_id=chat.pk).user.email == user.email
    main = connections["default"]

    def other_thread() -> None:
        try:
            found = owned.first(chat_id=chat.pk)
            seen["found"] = (found.title, found.user.email, found.created_at == chat.created_at)
            seen["own connection"] = connections["default"] is not main
        finally:
            connection.close()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert seen == {"found": ("Общий", user.email, True), "own connection": True}
    assert len(built) == 1  # compiled by the first thread only
