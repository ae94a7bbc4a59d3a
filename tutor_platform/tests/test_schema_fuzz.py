"""Schemathesis against our own OpenAPI schema, through the WSGI app.

Every operation is called with generated (valid and invalid) input and a
real student's JWT (the ML team's for /ml/): no response may be a 5xx or
disagree with the schema, and nothing of another user may change.
"""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, assume, settings
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.specs.openapi.checks import positive_data_acceptance

from chats.models import Chat, Message
from conftest import FUZZ_STATS, feedback_on
from feedback.models import Feedback
from progress.models import Progress
from tutor_platform.wsgi import application

pytestmark = pytest.mark.system  # starts servers or processes: not in `-m "not system"`

# Loaded at collection time; the schema view needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_connection():
    """The WSGI app closes "obsolete" connections around each request, which in
    a test transaction means the test's own; Django's test client disconnects
    the same handlers."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(keep_test_connection, make_user, ml_user, tutor, monkeypatch):
    """A student with data of their own, and another student whose data must not move."""
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {scope: "1000000/min" for scope in api_settings.DEFAULT_THROTTLE_RATES},
    )
    student, stranger = make_user(), make_user()
    for owner in (student, stranger):
        chat = Chat.objects.create(user=owner, tutor=tutor, title="Чат")
        asked = Message.objects.create(chat=chat, role="user", content="Вопрос")
        reply = Message.objects.create(chat=chat, role="assistant", content="Ответ", reply_to=asked)
        feedback_on(reply, feedback_type="detailed", rating=4)
        Progress.objects.create(user=owner, tutor=tutor, total_minutes=42)
    stranger.preferences = {"theme": "dark"}
    stranger.save()
    return {
        "student": f"Bearer {RefreshToken.for_user(student).access_token}",
        "ml": f"Bearer {RefreshToken.for_user(ml_user).access_token}",
        "stranger": stranger,
        "before": {flag: snapshot(stranger, with_processed=flag) for flag in (True, False)},
    }


def snapshot(user, *, with_processed: bool = True) -> tuple:
    """Everything of `user` that requests of others must leave alone.

    `processed` is the ML team's to set on anyone's feedback, so it is left
    out when the ML team's token is the one in use.
    """
    user.refresh_from_db()
    feedback_fields = (
        ("id", "rating", "processed", "message_id") if with_processed else ("id", "rating", "message_id")
    )
    return (
        user.password,
        user.email,
        user.username,
        user.preferences,
        list(Chat.objects.filter(user=user).values_list("id", "title", "last_message_at")),
        list(Message.objects.filter(chat__user=user).values_list("id", "content")),
        list(Feedback.objects.filter(user=user).values_list(*feedback_fields)),
        list(Progress.objects.filter(user=user).values_list("tutor_id", "total_minutes")),
    )


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_conforms_to_the_schema(case, world):
    # A query parameter with an empty name never reaches the server (the
    # client drops it), so the request schemathesis believes invalid arrives
    # valid: not a case the server can judge.
    assume("" not in (case.query or {}))
    ml = case.path.startswith("/api/v1/ml/")
    token = world["ml"] if ml else world["student"]
    # positive_data_acceptance is left out: the schema cannot say that a password
    # must not be common or that a tutor id must exist, so schema-valid bodies
    # are rightly refused with 400 there. Every other check runs.
    case.call_and_validate(headers={"Authorization": token}, excluded_checks=[positive_data_acceptance])
    FUZZ_STATS["requests"] += 1
    FUZZ_STATS["operations"].add(case.operation.label)
    assert snapshot(world["stranger"], with_processed=not ml) == world["before"][not ml]
