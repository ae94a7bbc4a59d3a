"""Issue 13, the content editor's admin: history, diff, restore, try-it,
and the fixes for what non-developers tripped on."""

import json

import pytest
import requests
import responses
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from chats.models import Chat, Message
from feedback.models import Feedback
from tutoring.models import Course, Tutor
from tutoring.services import TutorContent, tutor_version_save

GENERATE = "http://ai-core.test/api/v1/generate"

pytestmark = pytest.mark.django_db


@pytest.fixture
def edited(tutor, admin_user):
    """The tutor with a second version that an editor wrote."""
    tutor_version_save(
        tutor=tutor,
        content=TutorContent("Ты — строгий репетитор.\nОтвечай кратко.", "math-v1", "kb-math"),
        note="Короче ответы",
        by=admin_user,
    )
    return tutor


def page_of(client, tutor) -> str:
    response = client.get(f"/admin/tutoring/tutor/{tutor.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


class TestHistoryDiffRestore:
    def test_the_tutor_page_shows_every_version_with_its_numbers(self, client, staff_in, edited, user, chat):
        staff_in("Content editors")
        reply = Message.objects.create(
            chat=chat, role="assistant", content="!", tutor_version=edited.current_version
        )
        Feedback.objects.create(
            user=user, chat=chat, message=reply, tutor=edited, tutor_version=edited.current_version,
            feedback_type="detailed", rating=4, reply_content="!",
        )  # fmt: skip
        html = page_of(client, edited)
        assert "version-history" in html
        assert "Короче ответы" in html and ">admin<" in html
        assert "<td>v2</td>" in html and "<td>v1</td>" in html
        assert "4.00 (1 оценка)" in html
        assert f"/admin/tutoring/tutor/{edited.pk}/versions/1/restore/" in html

    def test_the_diff_shows_both_prompts_side_by_side(self, client, staff_in, edited):
        staff_in("Content editors")
        response = client.get(f"/admin/tutoring/tutor/{edited.pk}/versions/compare/", {"a": 1, "b": 2})
        assert response.status_code == 200
        html = response.content.decode()
        assert 'class="diff"' in html
        assert "терпеливый" in html and "строгий" in html
        assert "Короче ответы" in html
        # Issue 26, item 11: no cryptic navigation columns, no word cut at a column.
        assert 'class="diff_next"' not in html and ">f<" not in html and ">t<" not in html
        assert client.get(f"/admin/tutoring/tutor/{edited.pk}/versions/compare/", {"a": 9}).status_code == 404
        assert (
            client.get(f"/admin/tutoring/tutor/{edited.pk}/versions/compare/", {"a": "x"}).status_code == 404
        )

    def test_a_long_line_is_never_cut_inside_a_word(self, client, staff_in, edited, admin_user):
        long_line = " ".join(["Объясняй"] + ["последовательно"] * 12)  # ~200 characters
        tutor_version_save(
            tutor=edited, content=TutorContent(long_line, "math-v1", "kb-math"), note="Длинно", by=admin_user
        )
        staff_in("Content editors")
        html = client.get(f"/admin/tutoring/tutor/{edited.pk}/versions/compare/", {"a": 2, "b": 3}).content
        text = html.decode()
        assert long_line in text.replace('<span class="diff_add">', "").replace("</span>", "")
        assert "последовательн</" not in text and "&nbsp;" not in text

    def test_restore_asks_then_makes_a_new_version(self, client, staff_in, edited):
        editor = staff_in("Content editors")
        url = f"/admin/tutoring/tutor/{edited.pk}/versions/1/restore/"
        assert "создаёт <strong>новую версию</strong>" in client.get(url).content.decode()
        assert edited.versions.count() == 2  # asking changed nothing
        response = client.post(url)
        assert response.status_code == 302
        edited.refresh_from_db()
        assert (edited.current_version.number, edited.current_version.created_by) == (3, editor)
        assert edited.system_prompt == edited.versions.get(number=1).system_prompt
        assert "Версия v1 восстановлена как новая текущая версия v3." in [
            str(m) for m in get_messages(response.wsgi_request)
        ]

    def test_the_ml_team_reads_history_and_diffs_but_cannot_restore_or_try(self, client, staff_in, edited):
        staff_in("ML team")
        html = page_of(client, edited)
        assert "version-history" in html and "try-it" not in html
        assert client.get(f"/admin/tutoring/tutor/{edited.pk}/versions/compare/").status_code == 200
        assert client.post(f"/admin/tutoring/tutor/{edited.pk}/versions/1/restore/").status_code == 403
        assert client.post(f"/admin/tutoring/tutor/{edited.pk}/try/", {"question": "?"}).status_code == 403
        assert edited.versions.count() == 2

    def test_students_never_reach_these_pages(self, client, user, edited):
        client.force_login(user)
        for url in (
            f"/admin/tutoring/tutor/{edited.pk}/versions/compare/",
            f"/admin/tutoring/tutor/{edited.pk}/versions/1/restore/",
        ):
            assert client.get(url).status_code == 302  # to the admin login
        assert "system_prompt" not in APIClient().get(f"/api/v1/tutors/{edited.pk}/").json()


def try_it(client, tutor=None, **fields):
    url = f"/admin/tutoring/tutor/{tutor.pk}/try/" if tutor else "/admin/tutoring/tutor/try/"
    body = {
        "question": "Как решать x² = 4?",
        "system_prompt": "Черновик промпта",
        "model_id": "math-v9",
    } | fields
    return client.post(url, body)


class TestTryIt:
    @responses.activate
    def test_asks_with_the_draft_and_with_the_saved_version_and_saves_nothing(
        self, client, staff_in, edited, settings
    ):
        settings.AI_CORE_URL = "http://ai-core.test"
        responses.post(GENERATE, json={"content": "x = ±2"})
        staff_in("Content editors")
        chats, messages_, feedback = Chat.objects.count(), Message.objects.count(), Feedback.objects.count()

        response = try_it(client, edited, system_prompt="Черновик  \r\nпромпта")

        assert response.status_code == 200
        assert response.json() == {"draft": {"content": "x = ±2"}, "saved": {"content": "x = ±2"}}
        draft, saved = (json.loads(call.request.body) for call in responses.calls)
        assert (draft["system_prompt"], draft["model_id"], draft["tutor_version"]) == (
            "Черновик\nпромпта", "math-v9", None
        )  # fmt: skip
        assert (saved["system_prompt"], saved["tutor_version"]) == (edited.system_prompt, 2)
        assert draft["message"] == "Как решать x² = 4?" and draft["history"] == []
        assert (Chat.objects.count(), Message.objects.count(), Feedback.objects.count()) == (
            chats, messages_, feedback
        )  # fmt: skip
        assert edited.versions.count() == 2  # trying is not saving

    @responses.activate
    @pytest.mark.parametrize(
        "failure, words",
        [
            (dict(status=500, json={"detail": "boom"}), "AI-Core дал некорректный ответ"),
            (dict(json={"no_content": True}), "AI-Core дал некорректный ответ"),
            (dict(body=requests.ConnectionError("refused")), "AI-Core сейчас недоступен"),
        ],
    )
    def test_ai_core_errors_are_shown_in_words(self, client, staff_in, tutor, settings, failure, words):
        settings.AI_CORE_URL = "http://ai-core.test"
        settings.AI_CORE_MAX_RETRIES = 0
        responses.post(GENERATE, **failure)
        staff_in("Content editors")
        body = try_it(client, tutor).json()
        assert words in body["draft"]["error"]
        assert body["draft"]["code"].startswith("ai_core_")

    def test_through_the_real_stub(self, client, staff_in, tutor, settings):
        settings.AI_CORE_URL = "stub"
        staff_in("Content editors")
        body = try_it(client, tutor).json()
        assert body["draft"]["content"] and body["saved"]["content"]

    def test_works_on_a_tutor_not_yet_saved(self, client, staff_in, settings):
        settings.AI_CORE_URL = "stub"
        staff_in("Content editors")
        body = try_it(client).json()
        assert set(body) == {"draft"}

    def test_is_limited_per_editor(self, client, staff_in, tutor, settings, rates):
        settings.AI_CORE_URL = "stub"
        rates(try_it="2/hour")
        staff_in("Content editors")
        codes = [try_it(client, tutor).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert "Слишком много попыток" in try_it(client, tutor).json()["detail"]

    def test_a_missing_question_is_400(self, client, staff_in, tutor):
        staff_in("Content editors")
        response = try_it(client, tutor, question="")
        assert response.status_code == 400
        assert "question" in response.json()["errors"]


def new_tutor_form(course: Course, **changes) -> dict:
    """The admin's "add tutor" page as posted: a draft without a prompt."""
    base = {"course": course.pk, "name": "Новый", "description": "", "model_id": "m-1", "knowledge_base_id": "",
            "system_prompt": "", "note": ""}  # fmt: skip
    return base | changes


class TestEditorFixes:
    def test_a_tutor_cannot_be_active_with_an_empty_prompt(self, client, staff_in, course):
        staff_in("Content editors")
        response = client.post("/admin/tutoring/tutor/add/", new_tutor_form(course, is_active="on"))
        assert response.status_code == 200
        assert "Активному репетитору нужен системный промпт" in response.content.decode()
        assert not Tutor.objects.filter(name="Новый").exists()
        # Inactive, it is a draft: saved, and not in the catalogue.
        assert client.post("/admin/tutoring/tutor/add/", new_tutor_form(course)).status_code == 302
        assert not Tutor.objects.get(name="Новый").is_active
        assert APIClient().get("/api/v1/tutors/").json()["count"] == 0

    def test_new_courses_start_inactive_and_duplicate_names_are_refused(self, client, staff_in, course):
        staff_in("Content editors")
        form = {"name": "Физика", "slug": "physics", "description": "", "tutors-TOTAL_FORMS": "0",
                "tutors-INITIAL_FORMS": "0", "tutors-MIN_NUM_FORMS": "0", "tutors-MAX_NUM_FORMS": "1000"}  # fmt: skip
        assert client.post("/admin/tutoring/course/add/", form).status_code == 302
        assert Course.objects.get(slug="physics").is_active is False
        duplicate = client.post(
            "/admin/tutoring/course/add/", form | {"name": "МАТЕМАТИКА", "slug": "math-2"}
        )
        assert duplicate.status_code == 200
        assert "Курс «МАТЕМАТИКА» уже есть" in duplicate.content.decode()
        assert not Course.objects.filter(slug="math-2").exists()

    def test_bulk_activation_skips_tutors_without_a_prompt(self, client, staff_in, course, make_tutor):
        staff_in("Content editors")
        ready = make_tutor(name="Готов", is_active=False)
        draft = make_tutor(name="Черновик", is_active=False, system_prompt="")
        response = client.post(
            "/admin/tutoring/tutor/",
            {"action": "activate", "_selected_action": [ready.pk, draft.pk]},
            follow=True,
        )
        text = [str(m) for m in response.context["messages"]]
        assert "1 репетитор включён." in text
        assert any("Черновик" in m and "нет системного промпта" in m for m in text)
        ready.refresh_from_db(), draft.refresh_from_db()
        assert (ready.is_active, draft.is_active) == (True, False)

    def test_deactivating_says_how_many_students_have_chats(self, client, staff_in, tutor, make_user):
        staff_in("Content editors")
        for student in (make_user(), make_user()):
            Chat.objects.create(user=student, tutor=tutor)
            Chat.objects.create(user=student, tutor=tutor)
        response = client.post(
            "/admin/tutoring/tutor/", {"action": "deactivate", "_selected_action": [tutor.pk]}, follow=True
        )
        assert any("У 2 учеников есть чаты с ними" in str(m) for m in response.context["messages"])
        tutor.refresh_from_db()
        assert tutor.is_active is False
        assert APIClient().get("/api/v1/tutors/").json()["count"] == 0

    def test_search_folds_cyrillic_case_on_every_database(self, client, staff_in, make_tutor):
        staff_in("Content editors")
        geometry = make_tutor(name="Геометрия с Олегом")
        make_tutor(name="Пётр")
        changelist = client.get("/admin/tutoring/tutor/", {"q": "геометрия"})
        assert [t.pk for t in changelist.context["cl"].result_list] == [geometry.pk]
        api = APIClient().get("/api/v1/tutors/", {"search": "ГЕОМЕТРИЯ"}).json()["results"]
        assert [t["id"] for t in api] == [geometry.pk]
        assert client.get("/admin/tutoring/course/", {"q": "МАТЕМ"}).context["cl"].result_count == 1
