"""Issue 16: the staff's usage dashboard, read from the rollups."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from usage.dashboard import percentile
from usage.models import LATENCY_BUCKETS, DailyStudents, TutorDailyUsage, UserDailyUsage

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/usage/usagedashboard/"


def today():
    return datetime.now(UTC).date()


def usage(tutor, days_ago: int, **counts) -> TutorDailyUsage:
    return TutorDailyUsage.objects.create(tutor=tutor, day=today() - timedelta(days=days_ago), **counts)


def download(client, **query) -> list[dict]:
    response = client.get(DASHBOARD, {**query, "download": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


class TestPercentile:
    def test_interpolates_within_a_bucket(self):
        buckets = [0] * len(LATENCY_BUCKETS)
        buckets[0] = 10  # all ten within 0-250 ms
        assert percentile(buckets, 0.5) == 125
        buckets[2] = 10  # ten more within 500-1000 ms
        assert percentile(buckets, 0.5) == 250
        assert percentile(buckets, 0.95) == 950

    def test_no_replies_and_the_open_last_bucket(self):
        assert percentile([0] * len(LATENCY_BUCKETS), 0.5) is None
        buckets = [0] * len(LATENCY_BUCKETS)
        buckets[-1] = 3
        assert percentile(buckets, 0.95) == 60000


class TestDashboard:
    def test_the_numbers_per_day_as_csv(self, client, admin_user, tutor, make_tutor, user, other_user):
        other = make_tutor(name="Физика")
        usage(tutor, 0, messages=8, tokens=800, failures=2, students=2, latency_le_250=8)
        usage(other, 0, messages=2, tokens=50, students=1, latency_le_1000=2)
        usage(tutor, 3, messages=1, tokens=10, students=1, latency_le_500=1)
        usage(tutor, 40, messages=99)  # outside the 30 days
        DailyStudents.objects.create(day=today(), students=2)  # one student asked both tutors
        client.force_login(admin_user)

        rows = download(client)

        assert len(rows) == 30 and rows[-1]["day"] == today().isoformat()
        last = rows[-1]
        assert (last["replies"], last["tokens"], last["active_students"], last["ai_core_failures"]) == (
            "10",
            "850",
            "2",
            "2",
        )
        assert last["failure_rate_percent"] == "16.7"  # 2 failed of 12 asks
        assert (last["latency_p50_ms"], last["latency_p95_ms"]) == ("156", "875")
        assert rows[-4]["replies"] == "1" and rows[-2]["replies"] == "0"
        assert sum(int(row["replies"]) for row in rows) == 11

        only_physics = download(client, tutor=other.pk)
        assert (only_physics[-1]["replies"], only_physics[-1]["active_students"]) == ("2", "1")

    def test_the_rating_line_carries_the_last_note_forward(self, client, admin_user, tutor):
        usage(tutor, 45, rating=Decimal("3.00"))
        usage(tutor, 10, messages=1, rating=Decimal("4.50"))
        client.force_login(admin_user)

        rows = download(client, tutor=tutor.pk)

        line = [row[f"rating: {tutor.name}"] for row in rows]
        assert line[:19] == ["3.0"] * 19 and line[19:] == ["4.5"] * 11

    def test_students_nearest_their_quota(self, client, admin_user, user, other_user, settings):
        settings.AI_DAILY_MESSAGES_PER_USER = 50
        other_user.daily_messages_limit = 10
        other_user.save()
        UserDailyUsage.objects.create(user=user, day=today(), messages=30)
        UserDailyUsage.objects.create(user=other_user, day=today(), messages=8, reserved=1)
        client.force_login(admin_user)

        table = client.get(DASHBOARD).context["students"]

        assert [(row["user_id"], row["messages"], row["share"]) for row in table] == [
            (other_user.id, 9, 90),
            (user.id, 30, 60),
        ]
        assert table[0]["limits"].messages == 10 and table[0]["url"].endswith(f"/{other_user.id}/change/")

    def test_a_constant_number_of_queries(self, client, admin_user, make_tutor, make_user):
        client.force_login(admin_user)

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(DASHBOARD).status_code == 200
            return len(captured)

        tutor = make_tutor(name="Первый")
        usage(tutor, 0, messages=1, rating=Decimal("4"))
        small = queries()
        for n in range(8):
            extra = make_tutor(name=f"Репетитор {n}")
            student = make_user()
            for days_ago in range(30):
                usage(extra, days_ago, messages=n + days_ago, students=1, rating=Decimal("3.5"))
                DailyStudents.objects.get_or_create(day=today() - timedelta(days=days_ago))
            UserDailyUsage.objects.create(user=student, day=today(), messages=n)

        assert (
            queries() == small == 7
        )  # session, user; days (with students), tutors, rating notes, quota, flags

    def test_tutors_of_the_same_name_keep_a_line_each(self, client, admin_user, make_tutor):
        for rating in ("4.00", "2.00"):
            usage(make_tutor(name="Анна"), 0, messages=1, rating=Decimal(rating))
        client.force_login(admin_user)

        header = download(client)[0].keys()

        assert sorted(name for name in header if name.startswith("rating: Анна (#")) == sorted(
            f"rating: Анна (#{pk})" for pk in TutorDailyUsage.objects.values_list("tutor_id", flat=True)
        )

    def test_names_are_escaped_in_the_charts(self, client, admin_user, make_tutor):
        tutor = make_tutor(name="<script>alert(1)</script>")
        usage(tutor, 0, messages=1, rating=Decimal("5"))
        client.force_login(admin_user)

        page = client.get(DASHBOARD).content.decode()

        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert page.count('<figure class="chart">') == 7  # the safety flags chart too

    @pytest.mark.parametrize(("group", "status"), [("Content editors", 200), ("ML team", 200), (None, 403)])
    def test_who_may_see_it(self, staff_in, make_user, client, group, status):
        if group is None:
            client.force_login(make_user(is_staff=True))
        else:
            staff_in(group)
        assert client.get(DASHBOARD).status_code == status
        assert client.get(DASHBOARD, {"download": "csv"}).status_code == status

    def test_students_see_the_admin_login(self, client, user):
        client.force_login(user)
        assert client.get(DASHBOARD).status_code == 302

    def test_a_bad_tutor_parameter_shows_all_tutors(self, client, admin_user, tutor):
        usage(tutor, 0, messages=3)
        client.force_login(admin_user)
        for junk in ["abc", "-1", "9" * 40, "'; DROP TABLE", "²", "١٢"]:  # "²".isdigit() is True
            assert download(client, tutor=junk)[-1]["replies"] == "3"
