import pytest

from progress.models import Progress

pytestmark = pytest.mark.django_db


def url(tutor, suffix="") -> str:
    return f"/api/v1/progress/{tutor.id if hasattr(tutor, 'id') else tutor}/{suffix}"


class TestGetAndList:
    def test_get_creates_the_row_with_zero_minutes(self, auth_client, user, tutor):
        response = auth_client.get(url(tutor))
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"tutor", "total_minutes", "updated_at"}
        assert body["tutor"] == {"id": tutor.id, "name": "Анна"}
        assert body["total_minutes"] == 0
        assert Progress.objects.get(user=user, tutor=tutor).total_minutes == 0
        auth_client.get(url(tutor))
        assert Progress.objects.count() == 1

    def test_unknown_tutor_is_404_and_creates_nothing(self, auth_client):
        assert auth_client.get(url(999999)).status_code == 404
        assert auth_client.put(url(999999), {"total_minutes": 5}, format="json").status_code == 404
        assert auth_client.post(url(999999, "add/"), {"minutes": 5}, format="json").status_code == 404
        assert not Progress.objects.exists()

    def test_inactive_tutor_without_progress_is_404(self, auth_client, make_tutor):
        assert auth_client.get(url(make_tutor(is_active=False))).status_code == 404

    def test_existing_progress_of_a_deactivated_tutor_stays_readable(self, auth_client, user, tutor):
        Progress.objects.create(user=user, tutor=tutor, total_minutes=30)
        tutor.is_active = False
        tutor.save()
        assert auth_client.get(url(tutor)).json()["total_minutes"] == 30

    def test_list_shows_only_own_rows(self, auth_client, other_client, user, tutor, make_tutor):
        other_tutor = make_tutor()
        auth_client.put(url(tutor), {"total_minutes": 10}, format="json")
        other_client.put(url(tutor), {"total_minutes": 99}, format="json")
        other_client.get(url(other_tutor))
        body = auth_client.get("/api/v1/progress/").json()
        assert body["count"] == 1
        assert body["results"][0]["total_minutes"] == 10

    @pytest.mark.parametrize(("rows", "queries"), [(1, 2), (50, 3)])
    def test_list_query_count_is_constant(
        self, auth_client, user, make_tutor, django_assert_num_queries, rows, queries
    ):
        Progress.objects.bulk_create(Progress(user=user, tutor=make_tutor()) for _ in range(rows))
        # 1: token user, 2: the page joined with its tutor (one row more),
        # 3: count, when longer than a page.
        with django_assert_num_queries(queries):
            assert auth_client.get("/api/v1/progress/").status_code == 200

    def test_requires_a_token(self, api_client, tutor):
        assert api_client.get(url(tutor)).status_code == 401


class TestSetAndAdd:
    def test_put_sets_the_total(self, auth_client, user, tutor):
        response = auth_client.put(url(tutor), {"total_minutes": 125}, format="json")
        assert response.status_code == 200
        assert response.json()["total_minutes"] == 125
        assert Progress.objects.get(user=user).total_minutes == 125

    @pytest.mark.parametrize("value", [-1, "abc", None, 1.5, 10**12])
    def test_put_rejects_bad_totals(self, auth_client, user, tutor, value):
        auth_client.put(url(tutor), {"total_minutes": 7}, format="json")
        response = auth_client.put(url(tutor), {"total_minutes": value}, format="json")
        assert response.status_code == 400
        assert "total_minutes" in response.json()
        assert Progress.objects.get(user=user).total_minutes == 7

    def test_add_and_subtract(self, auth_client, user, tutor):
        assert (
            auth_client.post(url(tutor, "add/"), {"minutes": 45}, format="json").json()["total_minutes"] == 45
        )
        assert (
            auth_client.post(url(tutor, "add/"), {"minutes": -15}, format="json").json()["total_minutes"]
            == 30
        )
        assert Progress.objects.get(user=user).total_minutes == 30

    def test_subtracting_more_than_total_leaves_zero(self, auth_client, user, tutor):
        auth_client.put(url(tutor), {"total_minutes": 20}, format="json")
        response = auth_client.post(url(tutor, "add/"), {"minutes": -1440}, format="json")
        assert response.status_code == 200
        assert response.json()["total_minutes"] == 0
        assert Progress.objects.get(user=user).total_minutes == 0

    @pytest.mark.parametrize("minutes", [1440, -1440, 1])
    def test_add_bounds_accepted(self, auth_client, tutor, minutes):
        assert auth_client.post(url(tutor, "add/"), {"minutes": minutes}, format="json").status_code == 200

    @pytest.mark.parametrize("minutes", [0, 1441, -1441, "ten", None, 2.5])
    def test_add_rejects_bad_minutes(self, auth_client, user, tutor, minutes):
        response = auth_client.post(url(tutor, "add/"), {"minutes": minutes}, format="json")
        assert response.status_code == 400
        assert "minutes" in response.json()
        assert Progress.objects.filter(user=user, total_minutes__gt=0).count() == 0

    def test_users_are_isolated(self, auth_client, other_client, user, other_user, tutor):
        auth_client.post(url(tutor, "add/"), {"minutes": 10}, format="json")
        other_client.post(url(tutor, "add/"), {"minutes": 99}, format="json")
        assert Progress.objects.get(user=user).total_minutes == 10
        assert Progress.objects.get(user=other_user).total_minutes == 99
        assert auth_client.get(url(tutor)).json()["total_minutes"] == 10
