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


def test_a_chats_own_url_counts_against_the_same_user_budget(auth_client, chat, tight_rates):
    """There the user is loaded after the throttles, from the token's id
    (accounts.tokens.BearerAuthentication): the same key as everywhere."""
    statuses = [auth_client.get("/api/v1/auth/me/").status_code for _ in range(2)]
    statuses += [auth_client.get(f"/api/v1/chats/{chat.id}/").status_code for _ in range(2)]
    assert statuses == [200, 200, 200, 429]


@pytest.fixture(scope="module")
def openapi(django_db_blocker):
    import yaml
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return yaml.safe_load(yaml.safe_dump(SchemaGenerator().get_schema(request=None, public=True)))


def operations(openapi):
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_has_a_summary_and_a_readable_id(openapi):
    """Issue 11: generated clients name their functions after operationIds."""
    ids = [operation["operationId"] for _, _, operation in operations(openapi)]
    assert len(ids) == len(set(ids)) >= 34
    assert not [name for name in ids if name.startswith("api_")]
    assert all(operation["summary"] for _, _, operation in operations(openapi))


def test_429_is_documented_wherever_a_throttle_applies(openapi):
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in operations(openapi)
        if "429" not in operation["responses"] and path != "/api/v1/health/"
    ]
    assert missing == []
    for method in ("get", "patch"):
        assert "429" in openapi["paths"]["/api/v1/auth/me/"][method]["responses"]


def test_path_ids_are_integers_with_a_maximum(openapi):
    path_params = [
        parameter
        for _, _, operation in operations(openapi)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
    ]
    assert len(path_params) > 10
    assert all(p["schema"] == {"type": "integer", "minimum": 1, "maximum": 10**18 - 1} for p in path_params)


def test_response_fields_are_required_and_staff_fields_declared(openapi):
    schemas = openapi["components"]["schemas"]
    assert schemas["Profile"]["required"] == sorted(schemas["Profile"]["properties"])
    assert set(schemas["Chat"]["required"]) == {"id", "tutor", "title", "created_at", "last_message_at"}
    tutor = schemas["Tutor"]
    assert {"system_prompt", "model_id", "knowledge_base_id"} <= set(tutor["properties"])
    assert set(tutor["required"]) == {"id", "course", "name", "description", "rating", "total_feedbacks"}
    assert "decimal string" in tutor["properties"]["rating"]["description"]


def test_ordering_is_an_enum_and_the_username_has_no_ascii_only_pattern(openapi):
    params = {p["name"]: p for p in openapi["paths"]["/api/v1/tutors/"]["get"]["parameters"]}
    assert params["ordering"]["schema"]["enum"] == ["rating", "-rating", "name", "-name"]
    username = openapi["components"]["schemas"]["Profile"]["properties"]["username"]
    assert "pattern" not in username  # ECMAScript's \w is ASCII only; the server takes Cyrillic


def test_a_cyrillic_username_round_trips(api_client):
    body = {"email": "ivan@example.com", "username": "Иван_Петров", "password": "Correct-Horse-42-battery"}
    assert api_client.post("/api/v1/auth/register/", body, format="json").status_code == 201
    tokens = api_client.post("/api/v1/auth/login/", body, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.get("/api/v1/auth/me/").json()["username"] == "Иван_Петров"


def test_error_bodies_are_named_components_a_client_can_narrow_by_code(openapi):
    schemas = openapi["components"]["schemas"]
    conflict = openapi["paths"]["/api/v1/chats/{id}/messages/"]["post"]["responses"]["409"]
    schema = conflict["content"]["application/json"]["schema"]
    assert schema["discriminator"]["propertyName"] == "code"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == {
        "tutor_unavailable",
        "idempotency_key_in_use",
        "reply_discarded",
        "nothing_to_reply",
    }
    for code, ref in mapping.items():
        component = schemas[ref.rsplit("/", 1)[1]]
        assert component["properties"]["code"]["enum"] == [code]
        assert component["required"] == ["code", "detail"]
    not_found = openapi["paths"]["/api/v1/chats/{id}/"]["get"]["responses"]["404"]
    assert not_found["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NotFoundError"
    }
    assert "Error" not in schemas  # no catch-all body with a free-form code


def test_swagger_examples_are_realistic(openapi):
    schemas = openapi["components"]["schemas"]
    register = schemas["RegisterRequest"]["properties"]
    assert register["email"]["example"] == "ivan.petrov@example.com"
    assert register["username"]["example"] == "Иван_Петров"
    assert schemas["SendMessageRequest"]["properties"]["content"]["example"].startswith("Как решить")
    huge_examples = [
        (name, prop)
        for component in schemas.values()
        for name, prop in component.get("properties", {}).items()
        if prop.get("type") == "integer"
        and prop.get("maximum", 0) > 2**53
        and not 0 < prop.get("example", 0) < 2**53
    ]
    assert huge_examples == []


@pytest.mark.django_db
def test_each_request_is_counted_by_one_throttle_only(api_client, auth_client, monkeypatch):
    """Issue 17: one cache round trip per request for throttling: anonymous
    requests by the anonymous budget, a user's by theirs."""
    from tutor_platform import throttling

    counted: list[str] = []
    real_hit = throttling.hit

    def hit(key: str, window_seconds: int):
        counted.append(key)
        return real_hit(key, window_seconds)

    monkeypatch.setattr(throttling, "hit", hit)
    assert api_client.get("/api/v1/tutors/").status_code == 200
    assert len(counted) == 1 and counted[0].startswith("throttle_anon_")
    counted.clear()
    assert auth_client.get("/api/v1/tutors/").status_code == 200
    assert len(counted) == 1 and counted[0].startswith("throttle_user_")


def test_delete_bodies_match_their_serializers(openapi):
    """Issue 24, item 7: DELETE /auth/me/ needs {"password"}; drf-spectacular never renders a DELETE body."""
    from accounts.serializers import EraseAccountSerializer

    body = openapi["paths"]["/api/v1/auth/me/"]["delete"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    fields = EraseAccountSerializer().fields
    assert body["required"] is True
    assert set(schema["properties"]) == set(fields)
    assert set(schema["required"]) == {name for name, field in fields.items() if field.required}
    assert schema["properties"]["password"]["maxLength"] == fields["password"].max_length


def test_variants_are_a_plain_array_and_414_is_documented(openapi):
    variants = openapi["paths"]["/api/v1/chats/{id}/messages/{message_id}/variants/"]["get"]
    assert variants["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    assert {name for name in (p["name"] for p in variants.get("parameters", []))} == {"id", "message_id"}
    for item in openapi["paths"].values():
        for operation in item.values():
            assert "414" in operation["responses"], operation["operationId"]


def test_no_blank_or_null_enum_types_beside_an_enum(openapi):
    """Item 15: `QuickReactionEnum | BlankEnum` is two types to a generated client."""
    schemas = openapi["components"]["schemas"]
    assert "BlankEnum" not in schemas and "NullEnum" not in schemas
    assert schemas["QuickReactionEnum"]["enum"][0] == ""
    chat_create = schemas["ChatCreateRequest"]["properties"]["title"]
    assert "default" not in chat_create  # a default made `title` required in generated request types


def test_stream_events_are_named_schemas(openapi):
    """Item 15: the SSE 200 was a bare `string`; its events are named schemas now."""
    schemas = openapi["components"]["schemas"]
    refs = [one["$ref"].rsplit("/", 1)[1] for one in schemas["StreamEvent"]["oneOf"]]
    assert refs == ["Message", "StreamDelta", "StreamError"]
    assert "retry_after" not in schemas["StreamError"]["required"]  # only when it applies
    for path in (
        "/api/v1/chats/{id}/messages/",
        "/api/v1/chats/{id}/regenerate/",
        "/api/v1/chats/{id}/stream/",
    ):
        operation = openapi["paths"][path]["post" if "stream" not in path else "get"]
        schema = operation["responses"]["200"]["content"]["text/event-stream"]["schema"]
        assert schema == {"$ref": "#/components/schemas/StreamEvent"}
        assert "viewset" not in operation.get("description", "").lower()
