"""The admin through Django's test client: permissions, actions, export, query counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, Message
from conftest import feedback_on
from feedback.models import Feedback
from progress.models import Progress

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_feedback(user, chat):
    def make(n: int = 1, **fields) -> list[Feedback]:
        made = []
        for i in range(n):
            asked = Message.objects.create(chat=chat, role="user", content=f"Вопрос {i}")
            reply = Message.objects.create(chat=chat, role="assistant", content=f"Ответ {i}", reply_to=asked)
            made.append(feedback_on(reply, feedback_type="detailed", rating=1 + i % 5, **fields))
        return made

    return make


def test_content_editor_cannot_reach_feedback_users_or_chats(client, staff_in, tutor):
    staff_in("Content editors")
    assert client.get("/admin/tutoring/tutor/").status_code == 200
    assert client.get(f"/admin/tutoring/tutor/{tutor.id}/change/").status_code == 200
    for url in ("/admin/feedback/feedback/", "/admin/accounts/user/", "/admin/chats/chat/"):
        assert client.get(url).status_code == 403


def test_ml_team_edits_only_processed(client, staff_in, make_feedback):
    member = staff_in("ML team")
    (feedback,) = make_feedback()
    page = client.get(f"/admin/feedback/feedback/{feedback.id}/change/")
    assert page.status_code == 200
    form_fields = set(page.context["adminform"].form.fields)
    assert form_fields == {"processed"}
    html = page.content.decode()
    assert "Вопрос 0" in html and "Ответ 0" in html
    client.post(f"/admin/feedback/feedback/{feedback.id}/change/", {"processed": "on", "rating": "1"})
    feedback.refresh_from_db()
    assert (feedback.processed, feedback.processed_by, feedback.rating) == (True, member, 1)
    assert feedback.processed_at is not None


def test_ml_team_sees_tutors_read_only(client, staff_in, tutor):
    staff_in("ML team")
    page = client.get(f"/admin/tutoring/tutor/{tutor.id}/change/")
    assert page.status_code == 200
    assert not page.context["adminform"].form.fields
    client.post(f"/admin/tutoring/tutor/{tutor.id}/change/", {"name": "взлом"})
    tutor.refresh_from_db()
    assert tutor.name == "Анна"


def test_mark_actions_set_processed_by(client, staff_in, make_feedback):
    member = staff_in("ML team")
    items = make_feedback(3)
    ids = [str(f.id) for f in items[:2]]
    client.post("/admin/feedback/feedback/", {"action": "mark_processed", "_selected_action": ids})
    assert set(Feedback.objects.filter(processed=True).values_list("id", flat=True)) == {int(i) for i in ids}
    assert set(Feedback.objects.filter(processed=True).values_list("processed_by", flat=True)) == {member.id}
    client.post("/admin/feedback/feedback/", {"action": "mark_unprocessed", "_selected_action": ids[:1]})
    unmarked = Feedback.objects.get(pk=ids[0])
    assert (unmarked.processed, unmarked.processed_by, unmarked.processed_at) == (False, None, None)


def test_superuser_deleting_feedback_recomputes_the_rating(admin_client, make_feedback, tutor):
    from feedback.services import tutor_rating_recompute

    items = make_feedback(2)  # ratings 1 and 2
    tutor_rating_recompute(tutor_id=tutor.id)
    admin_client.post(f"/admin/feedback/feedback/{items[0].id}/delete/", {"post": "yes"})
    tutor.refresh_from_db()
    assert (str(tutor.rating), tutor.total_feedbacks) == ("2.00", 1)


def test_tutor_page_shows_the_feedback_summary(admin_client, make_feedback, tutor):
    make_feedback(7)
    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(f"/admin/tutoring/tutor/{tutor.id}/change/")
    html = page.content.decode()
    assert "Сводка отзывов" in html
    assert "<strong>7</strong> необработанных отзывов" in html
    summary_queries = [q for q in queries.captured_queries if "unprocessed" in q["sql"]]
    assert len(summary_queries) == 1


def test_rating_fields_are_read_only_in_the_tutor_form(admin_client, tutor):
    form = admin_client.get(f"/admin/tutoring/tutor/{tutor.id}/change/").context["adminform"].form
    assert "rating" not in form.fields and "total_feedbacks" not in form.fields
    assert "system_prompt" in form.fields


def _count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/feedback/feedback/",
        "/admin/chats/chat/",
        "/admin/chats/message/",
        "/admin/tutoring/tutor/",
        "/admin/tutoring/course/",
        "/admin/progress/progress/",
        "/admin/accounts/user/",
    ],
)
def test_changelist_query_count_does_not_grow_with_rows(admin_client, url, make_feedback, make_user, tutor):
    make_feedback(1)
    Progress.objects.create(user=make_user(), tutor=tutor)
    few = _count_queries(admin_client, url)
    for _ in range(10):
        student = make_user()
        chat = Chat.objects.create(user=student, tutor=tutor)
        Progress.objects.create(user=student, tutor=tutor)
        asked = Message.objects.create(chat=chat, role="user", content="?")
        reply = Message.objects.create(chat=chat, role="assistant", content="!", reply_to=asked)
        feedback_on(reply, quick_reaction="too_easy")
    make_feedback(30)
    assert _count_queries(admin_client, url) == few


class TestTriageScreen:
    def test_the_list_shows_what_was_said_and_to_what(self, client, staff_in, make_feedback):
        staff_in("ML team")
        make_feedback(improvement_text="Слишком длинно, нужны примеры " * 5)
        html = client.get("/admin/feedback/feedback/").content.decode()
        assert "Слишком длинно, нужны примеры" in html and "…" in html  # a snippet, cut
        assert "Ответ 0" in html
        assert "v1" in html and "1 ★" in html

    def test_the_overview_counts_per_tutor_and_links_the_unprocessed(
        self, client, staff_in, make_feedback, tutor, chat
    ):
        staff_in("ML team")
        make_feedback(3)  # ratings 1, 2, 3
        for reaction in ("incorrect", "understood", "incorrect", "too_easy"):
            reply = Message.objects.create(chat=chat, role="assistant", content="!")
            feedback_on(reply, quick_reaction=reaction, processed=True)
        response = client.get("/admin/feedback/feedback/overview/")
        assert response.status_code == 200
        (row,) = response.context["rows"]
        assert (row["count"], str(row["rating_avg"]), row["incorrect_share"], row["unprocessed"]) == (
            7,
            "2.00",
            50,
            3,
        )
        html = response.content.decode()
        assert f"?tutor__id__exact={tutor.id}&amp;processed__exact=0" in html
        filtered = client.get(f"/admin/feedback/feedback/?tutor__id__exact={tutor.id}&processed__exact=0")
        assert filtered.context["cl"].result_count == 3

    def test_content_editors_cannot_open_the_overview(self, client, staff_in):
        staff_in("Content editors")
        assert client.get("/admin/feedback/feedback/overview/").status_code == 403


class TestLooksLikeTheProduct:
    def test_the_admin_speaks_russian_by_default_and_english_on_request(self, client, staff_in):
        staff_in("ML team")
        html = client.get("/admin/").content.decode()
        assert "AI-репетитор · для сотрудников" in html
        assert "Django" not in html.split("<body")[1].split("</header>")[0]
        client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
        assert "AI Tutor · staff" in client.get("/admin/").content.decode()

    def test_the_admin_shows_moscow_time_and_the_api_stays_utc(
        self, client, staff_in, make_feedback, ml_user
    ):
        staff_in("ML team")
        (item,) = make_feedback()
        Feedback.objects.filter(pk=item.pk).update(created_at="2026-03-01T21:30:00Z")
        html = client.get(f"/admin/feedback/feedback/{item.pk}/change/").content.decode()
        assert "02.03.2026 00:30" in html  # 21:30 UTC is 00:30 the next day in Moscow
        from conftest import bearer_client

        (api_item,) = bearer_client(ml_user).get("/api/v1/ml/feedback/").json()["results"]
        assert api_item["created_at"] == "2026-03-01T21:30:00Z"

    def test_view_site_is_hidden_without_a_frontend_url(self, client, staff_in):
        staff_in("ML team")
        html = client.get("/admin/").content.decode()
        assert "View site" not in html and "Открыть сайт" not in html
