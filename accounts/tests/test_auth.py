import pytest
from django.urls import reverse
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.models import User
from conftest import PASSWORD

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"
CHANGE_PASSWORD = "/api/v1/auth/change-password/"

pytestmark = pytest.mark.django_db


def register(client, **overrides):
    body = {"email": "Ivan.Petrov@Example.com", "username": "ivan", "password": PASSWORD, **overrides}
    return client.post(REGISTER, body, format="json")


def login(client, **body):
    return client.post(LOGIN, body, format="json")


def test_urls_match_the_contract():
    assert reverse("auth-register") == REGISTER
    assert reverse("auth-preferences") == "/api/v1/auth/me/preferences/"


class TestRegister:
    def test_creates_user_with_lowercased_email_and_returns_profile(self, api_client):
        response = register(api_client, full_name="Иван Петров")
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {
            "id",
            "email",
            "username",
            "full_name",
            "is_active",
            "preferences",
            "allow_training",
            "learner",
            "created_at",
            "updated_at",
        }
        assert body["email"] == "ivan.petrov@example.com"
        assert body["full_name"] == "Иван Петров"
        assert body["preferences"] == {}
        user = User.objects.get(pk=body["id"])
        assert user.email == "ivan.petrov@example.com"
        assert user.check_password(PASSWORD)
        assert user.password != PASSWORD

    def test_full_name_is_optional(self, api_client):
        response = register(api_client)
        assert response.status_code == 201
        assert response.json()["full_name"] == ""

    def test_duplicate_email_in_another_case_is_400_naming_email(self, api_client, make_user):
        make_user(email="ivan.petrov@example.com", username="someone")
        response = register(api_client, email="IVAN.PETROV@EXAMPLE.COM")
        assert response.status_code == 400
        assert "email" in response.json()
        assert User.objects.count() == 1

    def test_duplicate_username_in_another_case_is_400_naming_username(self, api_client, make_user):
        make_user(username="Ivan")
        response = register(api_client, username="IVAN")
        assert response.status_code == 400
        assert list(response.json()) == ["username"]

    @pytest.mark.parametrize(
        "password, fragment",
        [
            ("Ab1!", "too short"),
            ("password123", "too common"),
            ("5938472615", "entirely numeric"),
            ("ivan.petrov", "too similar"),
        ],
    )
    def test_weak_password_is_400_with_the_validator_message(self, api_client, password, fragment):
        response = register(api_client, password=password)
        assert response.status_code == 400
        messages = " ".join(response.json()["password"])
        assert fragment in messages
        assert not User.objects.exists()

    @pytest.mark.parametrize("email", ["not-an-email", "a@b", "", "@example.com"])
    def test_bad_email_is_400(self, api_client, email):
        response = register(api_client, email=email)
        assert response.status_code == 400
        assert "email" in response.json()

    def test_username_with_at_sign_is_rejected(self, api_client):
        response = register(api_client, username="ivan@home")
        assert response.status_code == 400
        assert "username" in response.json()

    def test_staff_and_active_flags_in_the_body_are_ignored(self, api_client):
        response = register(
            api_client, is_staff=True, is_superuser=True, is_active=False, preferences={"x": 1}
        )
        assert response.status_code == 201
        user = User.objects.get()
        assert (user.is_staff, user.is_superuser, user.is_active) == (False, False, True)
        assert user.preferences == {}

    def test_password_never_appears_in_the_response(self, api_client):
        body = register(api_client).json()
        assert "password" not in body and "hashed_password" not in body


class TestLogin:
    def test_by_email_in_any_case(self, api_client, user):
        response = login(api_client, email=user.email.upper(), password=PASSWORD)
        assert response.status_code == 200
        assert set(response.json()) == {"access", "refresh"}

    def test_by_username(self, api_client, user):
        response = login(api_client, username=user.username, password=PASSWORD)
        assert response.status_code == 200
        access = response.json()["access"]
        me = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")
        assert me.status_code == 200
        assert me.json()["id"] == user.id

    def test_wrong_password_is_401(self, api_client, user):
        response = login(api_client, email=user.email, password="wrong-password-1")
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_credentials"

    def test_unknown_user_is_401(self, api_client):
        assert login(api_client, email="nobody@example.com", password=PASSWORD).status_code == 401

    def test_inactive_user_is_401(self, api_client, make_user):
        inactive = make_user(is_active=False)
        assert login(api_client, email=inactive.email, password=PASSWORD).status_code == 401

    def test_missing_identifier_is_400(self, api_client):
        response = login(api_client, password=PASSWORD)
        assert response.status_code == 400


class TestRefreshAndLogout:
    def _tokens(self, client, user):
        return login(client, email=user.email, password=PASSWORD).json()

    def test_refresh_rotates_and_the_old_refresh_is_dead(self, api_client, user):
        tokens = self._tokens(api_client, user)
        response = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
        assert response.status_code == 200
        rotated = response.json()
        assert set(rotated) == {"access", "refresh"}
        assert rotated["refresh"] != tokens["refresh"]
        again = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
        assert again.status_code == 401
        assert api_client.post(REFRESH, {"refresh": rotated["refresh"]}, format="json").status_code == 200

    def test_garbage_refresh_is_401(self, api_client):
        response = api_client.post(REFRESH, {"refresh": "not.a.token"}, format="json")
        assert response.status_code == 401
        assert response.json()["code"] == "token_not_valid"

    def test_access_token_is_not_a_refresh_token(self, api_client, user):
        tokens = self._tokens(api_client, user)
        assert api_client.post(REFRESH, {"refresh": tokens["access"]}, format="json").status_code == 401

    def test_refresh_of_a_deactivated_user_is_401(self, api_client, user):
        tokens = self._tokens(api_client, user)
        User.objects.filter(pk=user.pk).update(is_active=False)
        assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401

    def test_logout_blacklists_the_refresh_token(self, api_client, user):
        tokens = self._tokens(api_client, user)
        response = api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json")
        assert response.status_code == 204
        assert BlacklistedToken.objects.count() == 1
        assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401

    def test_logout_without_refresh_is_400(self, api_client):
        assert api_client.post(LOGOUT, {}, format="json").status_code == 400


class TestChangePassword:
    NEW = "Another-Strong-Pass-77"

    def test_kills_old_access_and_refresh_tokens(self, api_client, user):
        tokens = login(api_client, email=user.email, password=PASSWORD).json()
        second_session = login(api_client, email=user.email, password=PASSWORD).json()
        auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access']}"}
        response = api_client.post(
            CHANGE_PASSWORD, {"old_password": PASSWORD, "new_password": self.NEW}, format="json", **auth
        )
        assert response.status_code == 204
        assert api_client.get(ME, **auth).status_code == 401
        for refresh in (tokens["refresh"], second_session["refresh"]):
            assert api_client.post(REFRESH, {"refresh": refresh}, format="json").status_code == 401
        assert login(api_client, email=user.email, password=PASSWORD).status_code == 401
        fresh = login(api_client, email=user.email, password=self.NEW)
        assert fresh.status_code == 200
        assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {fresh.json()['access']}").status_code == 200

    def test_wrong_old_password_is_400_and_changes_nothing(self, auth_client, user):
        response = auth_client.post(
            CHANGE_PASSWORD, {"old_password": "nope-nope-1", "new_password": self.NEW}, format="json"
        )
        assert response.status_code == 400
        assert "old_password" in response.json()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_weak_new_password_is_400(self, auth_client, user):
        response = auth_client.post(
            CHANGE_PASSWORD, {"old_password": PASSWORD, "new_password": "12345678"}, format="json"
        )
        assert response.status_code == 400
        assert "new_password" in response.json()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_requires_a_token(self, api_client):
        response = api_client.post(CHANGE_PASSWORD, {"old_password": "a", "new_password": "b"}, format="json")
        assert response.status_code == 401
