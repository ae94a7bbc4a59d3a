"""Abuse that must bounce: forged tokens, other users' objects, leaky logs."""

import io
import logging
import re
from datetime import timedelta

import jwt
import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from chats.models import Message
from conftest import PASSWORD, feedback_on
from progress.models import Progress
from tutor_platform.logging import OneLineFormatter, RequestIDFilter

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"


def get_me(token: str):
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


class TestForgedTokens:
    def test_a_valid_token_works(self, user):
        assert get_me(str(AccessToken.for_user(user))).status_code == 200

    def test_expired_access_token_is_401(self, user):
        token = AccessToken.for_user(user)
        token.set_exp(lifetime=-timedelta(seconds=1))
        response = get_me(str(token))
        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"

    def test_token_signed_with_another_key_is_401(self, user):
        payload = dict(AccessToken.for_user(user).payload)
        forged = jwt.encode(payload, "not-the-server-key-" * 4, algorithm="HS256")
        assert get_me(forged).status_code == 401

    def test_alg_none_token_is_401(self, user):
        payload = dict(AccessToken.for_user(user).payload)
        unsigned = jwt.encode(payload, key=None, algorithm="none")
        assert get_me(unsigned).status_code == 401

    def test_refresh_token_used_as_access_token_is_401(self, user):
        assert get_me(str(RefreshToken.for_user(user))).status_code == 401

    def test_token_of_a_deleted_user_is_401(self, make_user):
        doomed = make_user()
        token = str(AccessToken.for_user(doomed))
        doomed.delete()
        assert get_me(token).status_code == 401

    def test_token_of_a_deactivated_user_is_401(self, user):
        token = str(AccessToken.for_user(user))
        user.is_active = False
        user.save()
        assert get_me(token).status_code == 401

    @pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Token abc", "Basic dXNlcjpwYXNz"])
    def test_malformed_authorization_headers_are_401(self, header):
        assert APIClient().get(ME, HTTP_AUTHORIZATION=header).status_code == 401


# Routes whose path names an object that belongs to a user. Every other
# route with a path parameter must be listed in PUBLIC_OR_SELF_KEYED, so a new
# owned route cannot be added without this test covering it.
OWNED = {
    "/api/v1/chats/{id}/": "chat",
    "/api/v1/feedback/{id}/": "feedback",
    "/api/v1/attachments/{id}/": "attachment",
}
PUBLIC_OR_SELF_KEYED = {
    "/api/v1/courses/{id}/",  # public catalogue
    "/api/v1/tutors/{id}/",  # public catalogue
    "/api/v1/progress/{tutor_id}/",  # keyed by tutor: always the caller's own row
    "/api/v1/progress/{tutor_id}/add/",
    "/api/v1/ml/tutors/{id}/versions/",  # staff only (content editors, ML team): no student's object
    "/api/v1/ml/experiments/{id}/",  # staff only (content editors, ML team): aggregates, no student's object
}


def operations_on_objects() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(public=True)
    return sorted(
        (path, method.upper()) for path, item in schema["paths"].items() if "{" in path for method in item
    )


def test_every_route_with_an_object_is_classified():
    paths = {path for path, _ in operations_on_objects()}
    owned = {path for path in paths if any(path.startswith(prefix) for prefix in OWNED)}
    assert paths == owned | PUBLIC_OR_SELF_KEYED


@pytest.mark.parametrize(
    "path, method",
    [(p, m) for p, m in operations_on_objects() if any(p.startswith(prefix) for prefix in OWNED)],
)
def test_another_users_object_is_404_on_every_route_and_method(
    path, method, auth_client, other_user, other_chat, make_exchange, make_attachment
):
    _, reply = make_exchange(other_chat)
    feedback = feedback_on(reply, feedback_type="detailed", rating=3)
    upload = make_attachment(other_user)
    objects = {"chat": other_chat.id, "feedback": feedback.id, "attachment": upload.id}
    prefix = next(p for p in OWNED if path.startswith(p))
    url = path.replace("{id}", str(objects[OWNED[prefix]]))
    body = {"title": "взлом", "content": "взлом", "message": reply.id, "feedback_type": "quick"}
    response = auth_client.generic(
        method, url, data=__import__("json").dumps(body), content_type="application/json"
    )
    assert response.status_code == 404, (method, url, response.status_code)
    assert Message.objects.filter(chat=other_chat).count() == 2
    other_chat.refresh_from_db()
    assert other_chat.title == "Чужой чат"
    feedback.refresh_from_db()
    assert feedback.rating == 3
    assert upload.file.storage.exists(upload.file.name)
    upload.refresh_from_db()  # still there


def test_progress_routes_never_touch_another_users_row(auth_client, other_user, tutor):
    theirs = Progress.objects.create(user=other_user, tutor=tutor, total_minutes=77)
    auth_client.put(f"/api/v1/progress/{tutor.id}/", {"total_minutes": 1}, format="json")
    auth_client.post(f"/api/v1/progress/{tutor.id}/add/", {"minutes": -60}, format="json")
    theirs.refresh_from_db()
    assert theirs.total_minutes == 77


def test_logs_of_a_whole_session_hold_no_secrets_and_carry_request_ids(tutor, settings):
    """Item 18 too: the error paths (AI-Core failing, a database error quoting
    the student's text, a 500) keep the request id and lose the text."""
    import responses

    ai_url = "http://ai-core.test"
    settings.AI_CORE_URL = ai_url
    settings.AI_CORE_MAX_RETRIES = 0
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIDFilter())
    assert settings.LOGGING["formatters"]["line"]["()"] == "tutor_platform.logging.OneLineFormatter"
    handler.setFormatter(OneLineFormatter(settings.LOGGING["formatters"]["line"]["format"]))
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    secret_text = "Мой секретный вопрос про интегралы 7f3a"
    db_secret = "секретный текст qzx-e5b2"  # a variable: traceback lines show source code

    def database_error_quoting_the_student(request):
        # A fault at the HTTP boundary that runs a real, failing query with the text in it.
        Message.objects.create(chat_id=chat["id"], role="bogus", content=db_secret)

    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.start()
    mock.post(f"{ai_url}/api/v1/generate", json={"content": "Ответ репетитора"})
    try:
        client = APIClient()
        client.post(
            "/api/v1/auth/register/",
            {"email": "log@example.com", "username": "logger", "password": PASSWORD},
            format="json",
        )
        tokens = client.post("/api/v1/auth/login/", {"email": "log@example.com", "password": PASSWORD}).json()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        chat = client.post("/api/v1/chats/", {"tutor": tutor.id}, format="json").json()
        sent = client.post(
            f"/api/v1/chats/{chat['id']}/messages/", {"content": secret_text}, format="json"
        ).json()
        client.post(
            "/api/v1/feedback/",
            {"message": sent["assistant_message"]["id"], "feedback_type": "detailed", "rating": 5,
             "positive_text": "секретный отзыв qzx-9c1d"},
            format="json",
        )  # fmt: skip
        client.post("/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}, format="json")
        client.post("/api/v1/auth/login/", {"email": "log@example.com", "password": "wrong-password-1"})
        mock.replace(responses.POST, f"{ai_url}/api/v1/generate", status=503, headers={"Retry-After": "3"})
        unavailable = client.post(
            f"/api/v1/chats/{chat['id']}/messages/", {"content": secret_text}, format="json"
        )
        assert unavailable.status_code == 503
        mock.replace(responses.POST, f"{ai_url}/api/v1/generate", body=RuntimeError("unexpected"))
        crashed = client.post(f"/api/v1/chats/{chat['id']}/messages/", {"content": "вопрос"}, format="json")
        assert crashed.status_code == 500
        mock.remove(responses.POST, f"{ai_url}/api/v1/generate")
        mock.add_callback(
            responses.POST, f"{ai_url}/api/v1/generate", callback=database_error_quoting_the_student
        )
        failed = client.post(f"/api/v1/chats/{chat['id']}/messages/", {"content": "вопрос"}, format="json")
        assert failed.status_code == 500
        assert failed.json()["user_message"]["content"] == "вопрос"
    finally:
        mock.stop()
        mock.reset()
        root.removeHandler(handler)
        root.setLevel(previous_level)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 7
    text = stream.getvalue()
    for secret in (
        PASSWORD,
        "wrong-password-1",
        tokens["access"],
        tokens["refresh"],
        "qzx-9c1d",  # not hex alone: request ids are random hex
        "интеграл",
        "qzx-e5b2",
    ):
        assert secret not in text
    # The failures were logged, tracebacks included, each on its request's line.
    assert "Service Unavailable" in text
    assert "Traceback" in text
    assert "message_role_valid" in text or "message scrubbed" in text
    for line in lines:
        assert re.search(r"request_id=[0-9a-f]{32}\b", line), line
