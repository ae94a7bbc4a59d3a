import pytest
from django.core.management import call_command
from rest_framework.settings import api_settings

pytestmark = pytest.mark.django_db


def test_schema_generates_without_warnings_and_validates(tmp_path):
    target = tmp_path / "schema.yaml"
    # --fail-on-warn turns any drf-spectacular warning into an error.
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    text = target.read_text()
    for path in (
        "/api/v1/auth/register/",
        "/api/v1/chats/{id}/messages/",
        "/api/v1/chats/{id}/reply/",
        "/api/v1/ml/feedback/mark-processed/",
        "/api/v1/progress/{tutor_id}/add/",
        "/api/v1/health/",
    ):
        assert f"  {path}:" in text
    assert "jwtAuth" in text


def test_schema_swagger_and_redoc_are_served_offline(api_client):
    schema = api_client.get("/api/schema/")
    assert schema.status_code == 200
    swagger = api_client.get("/docs/")
    assert swagger.status_code == 200
    html = swagger.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    redoc = api_client.get("/redoc/")
    assert redoc.status_code == 200
    assert "cdn" not in redoc.content.decode().lower()


@pytest.fixture
def tight_rates(monkeypatch):
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "anon": "3/min", "user": "3/min"}
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def test_anonymous_requests_are_throttled_with_retry_after(api_client, tight_rates):
    statuses = [api_client.get("/api/v1/courses/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/v1/courses/")
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_authenticated_requests_are_throttled_per_user(auth_client, other_client, tight_rates):
    statuses = [auth_client.get("/api/v1/auth/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert other_client.get("/api/v1/auth/me/").status_code == 200
