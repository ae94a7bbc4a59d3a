import json

import pytest
from django.utils import timezone
from rest_framework import serializers as drf

from accounts.models import User
from accounts.serializers import ProfileSerializer, RegisterSerializer

ME = "/api/v1/auth/me/"
PREFERENCES = "/api/v1/auth/me/preferences/"

pytestmark = pytest.mark.django_db


class TestMe:
    def test_requires_a_token(self, api_client):
        response = api_client.get(ME)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"

    def test_returns_own_profile(self, auth_client, user):
        body = auth_client.get(ME).json()
        assert body["id"] == user.id
        assert body["email"] == user.email
        assert body["full_name"] == "Иван Петров"
        assert "password" not in body

    def test_patch_changes_name_and_username(self, auth_client, user):
        response = auth_client.patch(ME, {"full_name": "Пётр Иванов", "username": "petr"}, format="json")
        assert response.status_code == 200
        assert response.json()["full_name"] == "Пётр Иванов"
        user.refresh_from_db()
        assert (user.full_name, user.username) == ("Пётр Иванов", "petr")

    def test_patch_ignores_read_only_fields(self, auth_client, user):
        response = auth_client.patch(
            ME,
            {
                "email": "hacker@example.com",
                "is_staff": True,
                "is_active": False,
                "is_superuser": True,
                "id": 999,
            },
            format="json",
        )
        assert response.status_code == 200
        user.refresh_from_db()
        assert user.email.startswith("student")
        assert (user.is_staff, user.is_active, user.is_superuser) == (False, True, False)

    def test_patch_username_taken_in_another_case_is_400(self, auth_client, user, other_user):
        response = auth_client.patch(ME, {"username": other_user.username.upper()}, format="json")
        assert response.status_code == 400
        assert "username" in response.json()
        user.refresh_from_db()
        assert user.username != other_user.username.upper()

    def test_patch_own_username_in_another_case_is_allowed(self, auth_client, user):
        response = auth_client.patch(ME, {"username": user.username.upper()}, format="json")
        assert response.status_code == 200


class TestPreferences:
    def test_starts_empty(self, auth_client):
        response = auth_client.get(PREFERENCES)
        assert response.status_code == 200
        assert response.json() == {}

    def test_patch_merges_top_level_keys_and_null_removes(self, auth_client, user):
        auth_client.put(PREFERENCES, {"theme": "dark", "language": "ru", "font": 14}, format="json")
        response = auth_client.patch(
            PREFERENCES, {"theme": "light", "font": None, "sound": True}, format="json"
        )
        assert response.status_code == 200
        assert response.json() == {"theme": "light", "language": "ru", "sound": True}
        user.refresh_from_db()
        assert user.preferences == {"theme": "light", "language": "ru", "sound": True}

    def test_put_replaces(self, auth_client, user):
        auth_client.put(PREFERENCES, {"theme": "dark", "language": "ru"}, format="json")
        response = auth_client.put(PREFERENCES, {"goal": "ЕГЭ"}, format="json")
        assert response.json() == {"goal": "ЕГЭ"}
        user.refresh_from_db()
        assert user.preferences == {"goal": "ЕГЭ"}

    def test_preferences_show_in_the_profile(self, auth_client):
        auth_client.put(PREFERENCES, {"theme": "dark"}, format="json")
        assert auth_client.get(ME).json()["preferences"] == {"theme": "dark"}

    @pytest.mark.parametrize("body", [[1, 2], "text", 5, None])
    def test_non_object_is_400(self, auth_client, user, body):
        response = auth_client.put(PREFERENCES, json.dumps(body), content_type="application/json")
        assert response.status_code == 400
        user.refresh_from_db()
        assert user.preferences == {}

    def test_over_16_kib_is_400(self, auth_client, user):
        response = auth_client.put(PREFERENCES, {"notes": "я" * 9000}, format="json")
        assert response.status_code == 400
        user.refresh_from_db()
        assert user.preferences == {}

    def test_merge_that_grows_past_16_kib_is_400(self, auth_client, user):
        assert auth_client.put(PREFERENCES, {"a": "x" * 10000}, format="json").status_code == 200
        response = auth_client.patch(PREFERENCES, {"b": "y" * 10000}, format="json")
        assert response.status_code == 400
        user.refresh_from_db()
        assert set(user.preferences) == {"a"}

    def test_deeply_nested_is_400(self, auth_client, user):
        nested: dict = {}
        node = nested
        for _ in range(20):
            node["k"] = {}
            node = node["k"]
        assert auth_client.put(PREFERENCES, nested, format="json").status_code == 400
        user.refresh_from_db()
        assert user.preferences == {}

    def test_russian_text_is_stored_as_is(self, auth_client):
        auth_client.put(PREFERENCES, {"цель": "сдать ЕГЭ на 100 баллов"}, format="json")
        assert User.objects.get().preferences == {"цель": "сдать ЕГЭ на 100 баллов"}


@pytest.mark.django_db
def test_the_profile_reads_straight_off_the_user_as_drf_would(make_user):
    """ProfileSerializer's direct path against DRF's field by field, in the
    default time zone and another one, with a learner profile and without."""
    told = make_user(email="told@example.com", username="Ученик", full_name="Иван Петров")
    told.learner_grade, told.learner_level, told.learner_goals = 7, "beginner", "Сдать ОГЭ"
    told.preferences = {"тема": "тёмная", "n": [1, 2]}
    told.save()
    silent = make_user(email="silent@example.com", username="silent")
    for zone in ("UTC", "Asia/Vladivostok"):
        with timezone.override(zone):
            for user in (told, silent):
                shown = ProfileSerializer(user).data
                assert shown == drf.ModelSerializer.to_representation(ProfileSerializer(), user)
                assert list(shown) == ProfileSerializer.Meta.fields
    assert ProfileSerializer(told).data["learner"]["goals"] == "Сдать ОГЭ"
    registered = RegisterSerializer(told).data  # its own fields, not the profile's
    assert "learner" not in registered and list(registered) == [
        f for f in RegisterSerializer.Meta.fields if f != "password"
    ]
