"""Every error from /api/ is JSON with a stable code, never HTML or a traceback."""

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.content.decode()


def test_unknown_api_path_is_json_404(api_client):
    assert_json_error(api_client.get("/api/v1/nothing-here/"), 404, "not_found")


@override_settings(DEBUG=True)
def test_with_debug_on_an_unknown_api_path_is_still_json_404(api_client):
    """Issue 11: generated clients crashed on Django's technical 404 page in development."""
    assert_json_error(api_client.get("/api/v1/nothing-here/"), 404, "not_found")
    assert_json_error(api_client.get("/api/v1/chats/abc/"), 404, "not_found")


def test_non_integer_id_in_path_is_json_404(auth_client):
    assert_json_error(auth_client.get("/api/v1/chats/abc/"), 404, "not_found")


@pytest.mark.parametrize(
    "path", ["/api/v1/chats/99999999999999999999999/", "/api/v1/progress/99999999999999999999999/"]
)
def test_id_beyond_bigint_is_json_404(auth_client, path):
    assert_json_error(auth_client.get(path), 404, "not_found")


def test_wrong_method_is_json_405(auth_client):
    assert_json_error(auth_client.put("/api/v1/auth/me/", {}, format="json"), 405, "method_not_allowed")


def test_malformed_json_is_400_parse_error(api_client):
    response = api_client.post("/api/v1/auth/login/", "{not json", content_type="application/json")
    assert_json_error(response, 400, "parse_error")


def test_absurdly_nested_json_is_400_not_500(auth_client):
    body = "[" * 100_000 + "]" * 100_000
    response = auth_client.patch("/api/v1/auth/me/", body, content_type="application/json")
    assert_json_error(response, 400, "parse_error")


def test_an_anonymous_body_over_the_small_limit_is_413_before_parsing(api_client, settings):
    """Item 10: login, register and refresh need a few hundred bytes, not 2.5 MB."""
    body = "[" + "[]," * 10_000 + "[]]"
    assert settings.ANON_DATA_UPLOAD_MAX_SIZE < len(body) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = api_client.post("/api/v1/auth/login/", body, content_type="application/json")
    assert_json_error(response, 413, "request_too_large")


def test_a_body_of_too_many_elements_is_400_before_decoding(auth_client, user):
    """Item 10: 2.5 MB of empty arrays took 2.3 s of CPU to decode and walk."""
    body = '{"full_name": "x", "junk": [' + "[]," * 800_000 + "[]]}"
    assert len(body) < 2_621_440
    response = auth_client.patch("/api/v1/auth/me/", body, content_type="application/json")
    assert_json_error(response, 400, "parse_error")
    assert "elements" in response.json()["detail"]


@pytest.mark.parametrize("where", ["attachments", "preferences"])
def test_an_infinite_number_is_400_not_500(auth_client, chat, where):
    """Item 17: `1e999` decodes to infinity, which neither PostgreSQL's JSON nor a client can hold."""
    from chats.models import Message

    if where == "attachments":
        body = '{"content": "x", "attachments": [{"size": 1e999}]}'
        response = auth_client.post(
            f"/api/v1/chats/{chat.id}/messages/", body, content_type="application/json"
        )
    else:
        response = auth_client.patch(
            "/api/v1/auth/me/preferences/", '{"zoom": -1e999}', content_type="application/json"
        )
    assert_json_error(response, 400, "parse_error")
    assert "finite" in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("text", ["nul\\u0000byte", "lone \\ud800 surrogate"])
def test_text_the_database_cannot_store_is_400(auth_client, text):
    body = '{"full_name": "' + text + '"}'
    response = auth_client.patch("/api/v1/auth/me/", body, content_type="application/json")
    assert_json_error(response, 400, "parse_error")


def test_nul_in_query_string_is_400(api_client):
    assert api_client.get("/api/v1/tutors/?search=%00").status_code == 400


def test_unsupported_media_type_is_json_415(auth_client):
    response = auth_client.patch(
        "/api/v1/auth/me/", "full_name=x", content_type="application/x-www-form-urlencoded"
    )
    assert_json_error(response, 415, "unsupported_media_type")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_body_over_the_limit_is_json_413(auth_client, user):
    response = auth_client.patch("/api/v1/auth/me/", {"full_name": "я" * 2000}, format="json")
    assert_json_error(response, 413, "request_too_large")
    user.refresh_from_db()
    assert user.full_name == "Иван Петров"


def test_unexpected_exception_is_json_500_without_traceback(auth_client, monkeypatch):
    from accounts import views

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views.ProfileSerializer, "to_representation", explode)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=auth_client._credentials["HTTP_AUTHORIZATION"])
    response = client.get("/api/v1/auth/me/")
    assert_json_error(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()


def test_request_id_is_generated_and_echoed(api_client):
    generated = api_client.get("/api/v1/health/")
    assert len(generated["X-Request-ID"]) == 32
    echoed = api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID="frontend-123")
    assert echoed["X-Request-ID"] == "frontend-123"
    unsafe = api_client.get("/api/v1/health/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert unsafe["X-Request-ID"] != "bad id\nwith newline"


def test_admin_404_stays_html(admin_client):
    response = admin_client.get("/admin/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_health_reports_database_and_stub(api_client):
    response = api_client.get("/api/v1/health/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "ai_core": "stub",
        "providers": {},
        "cache": "ok",
    }


def test_health_is_503_when_the_database_is_unreachable(api_client, monkeypatch):
    from django.db.utils import OperationalError

    def fail(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", fail)
    response = api_client.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"] == "error"


def test_body_over_the_default_limit_is_json_413_and_saves_nothing(auth_client, chat):
    from chats.models import Message

    body = '{"content": "' + "x" * 3_000_000 + '"}'
    response = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", body, content_type="application/json")
    assert_json_error(response, 413, "request_too_large")
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "path", ["/api/v1/tutors/?course_id=1", "/api/v1/auth/me/?debug=1", "/api/v1/chats/?tutor_id=1"]
)
def test_unknown_query_parameter_is_400_naming_it(auth_client, path):
    response = auth_client.get(path)
    assert response.status_code == 400
    name = path.split("?")[1].split("=")[0]
    assert response.json() == {name: ["Unknown query parameter."]}


def test_declared_query_parameters_are_accepted(auth_client, tutor, chat):
    assert (
        auth_client.get(
            f"/api/v1/tutors/?course={tutor.course_id}&search=А&ordering=-rating&page=1&page_size=5"
        ).status_code
        == 200
    )
    assert auth_client.get(f"/api/v1/chats/?tutor={tutor.id}&page=1").status_code == 200
    assert auth_client.get(f"/api/v1/chats/{chat.id}/messages/?limit=5&before_id=10").status_code == 200
