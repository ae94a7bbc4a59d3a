"""Issue 13: every change to a tutor's content is a new, immutable version,
tied to the replies it produced and to their feedback."""

import json

import pytest
import responses
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.roles import CONTENT_EDITORS
from chats.models import Message
from conftest import feedback_on, requires_postgresql, run_in_threads, tutor_admin_form
from feedback.models import Feedback
from tutoring.models import Tutor, TutorVersion
from tutoring.services import TutorContent, normalize_prompt, tutor_version_restore, tutor_version_save

GENERATE = "http://ai-core.test/api/v1/generate"

pytestmark = pytest.mark.django_db


def versions(tutor: Tutor) -> list[tuple[int, str]]:
    return list(tutor.versions.order_by("number").values_list("number", "system_prompt"))


def content_of(tutor: Tutor, **changes) -> TutorContent:
    tutor.refresh_from_db()
    fields = {
        "system_prompt": tutor.system_prompt,
        "model_id": tutor.model_id,
        "knowledge_base_id": tutor.knowledge_base_id,
    }
    return TutorContent(**(fields | changes))


class TestVersionsAreMadeOnlyByAChange:
    def test_a_new_tutor_has_version_1(self, tutor):
        assert versions(tutor) == [(1, "Ты — терпеливый репетитор. Отвечай по-русски.")]
        assert tutor.current_version.number == 1

    def test_a_change_makes_the_next_version_and_keeps_the_old_one(self, tutor, admin_user):
        version = tutor_version_save(
            tutor=tutor, content=content_of(tutor, system_prompt="Новый промпт"), note="короче", by=admin_user
        )
        assert (version.number, version.note, version.created_by) == (2, "короче", admin_user)
        assert versions(tutor) == [(1, "Ты — терпеливый репетитор. Отвечай по-русски."), (2, "Новый промпт")]
        tutor.refresh_from_db()
        assert (tutor.current_version, tutor.system_prompt) == (version, "Новый промпт")

    def test_saving_the_same_content_makes_none(self, tutor):
        assert tutor_version_save(tutor=tutor, content=content_of(tutor)) is None
        # Differences the normalisation removes are no change either.
        same = content_of(tutor, system_prompt=tutor.system_prompt.replace(".", ".  ") + "\r\n\r\n")
        same = TutorContent(
            same.system_prompt.replace(".  ", "."), same.model_id + " ", same.knowledge_base_id
        )
        assert tutor_version_save(tutor=tutor, content=same) is None
        assert tutor.versions.count() == 1

    def test_a_model_or_knowledge_base_change_is_a_version_too(self, tutor):
        tutor_version_save(tutor=tutor, content=content_of(tutor, model_id="math-v2"))
        tutor_version_save(tutor=tutor, content=content_of(tutor, knowledge_base_id="kb-2"))
        assert list(tutor.versions.order_by("number").values_list("model_id", "knowledge_base_id")) == [
            ("math-v1", "kb-math"),
            ("math-v2", "kb-math"),
            ("math-v2", "kb-2"),
        ]

    def test_prompts_are_stored_as_the_editor_meant_them(self):
        assert normalize_prompt("Строка 1   \r\nСтрока 2\t\r\n\r\n  ") == "Строка 1\nСтрока 2"
        assert (
            normalize_prompt("  отступ сохраняется\n\n\nабзацы тоже")
            == "  отступ сохраняется\n\n\nабзацы тоже"
        )

    def test_the_admin_form_saves_a_version_with_note_and_author(self, client, admin_user, tutor):
        client.force_login(admin_user)
        form = tutor_admin_form(
            tutor, system_prompt="Объясняй  \r\nпо шагам\r\n", note="Шаги вместо сплошного текста"
        )
        assert client.post(f"/admin/tutoring/tutor/{tutor.id}/change/", form).status_code == 302
        latest = tutor.versions.get(number=2)
        assert (latest.system_prompt, latest.note, latest.created_by) == (
            "Объясняй\nпо шагам",
            "Шаги вместо сплошного текста",
            admin_user,
        )
        # Saving the page again without a change makes no version.
        assert (
            client.post(f"/admin/tutoring/tutor/{tutor.id}/change/", tutor_admin_form(tutor)).status_code
            == 302
        )
        assert tutor.versions.count() == 2

    def test_a_tutor_added_in_the_admin_gets_version_1(self, client, admin_user, course):
        client.force_login(admin_user)
        form = {
            "course": course.id,
            "name": "Новый",
            "description": "",
            "model_id": "m-1",
            "knowledge_base_id": "",
            "system_prompt": "Ты — репетитор.",
            "note": "Первая версия",
        }
        assert client.post("/admin/tutoring/tutor/add/", form).status_code == 302
        tutor = Tutor.objects.get(name="Новый")
        assert versions(tutor) == [(1, "Ты — репетитор.")]
        assert tutor.is_active is False  # new tutors start hidden

    def test_restore_makes_a_new_version_with_the_old_content(self, tutor, admin_user):
        original = tutor.system_prompt
        tutor_version_save(tutor=tutor, content=content_of(tutor, system_prompt="Плохая правка"))
        restored = tutor_version_restore(tutor=tutor, number=1, by=admin_user)
        assert restored.number == 3
        assert restored.note == "Restored version 1"
        assert versions(tutor) == [(1, original), (2, "Плохая правка"), (3, original)]
        tutor.refresh_from_db()
        assert tutor.system_prompt == original

    def test_versions_existing_before_this_change_came_from_a_data_migration(self, transactional_db):
        executor = MigrationExecutor(connection)
        executor.migrate([("tutoring", "0001_initial")])
        old_apps = executor.loader.project_state([("tutoring", "0001_initial")]).apps
        course = old_apps.get_model("tutoring", "Course").objects.create(name="Физика", slug="ph")
        old_apps.get_model("tutoring", "Tutor").objects.create(
            course=course,
            name="Пётр",
            model_id="ph-1",
            knowledge_base_id="kb",
            system_prompt="Старый  \r\nпромпт",
        )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        tutor = Tutor.objects.select_related("current_version").get(name="Пётр")
        version = tutor.current_version
        assert (version.number, version.system_prompt, version.model_id, version.knowledge_base_id) == (
            1,
            "Старый\nпромпт",
            "ph-1",
            "kb",
        )


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_editors_saving_at_once_get_consecutive_numbers(tutor):
    for trial in range(5):

        def save(index: int, trial: int = trial) -> int:
            content = TutorContent(f"Правка {trial} редактора {index}", "math-v1", "kb-math")
            return tutor_version_save(tutor=Tutor.objects.get(pk=tutor.pk), content=content).number

        start = tutor.versions.count()
        numbers = run_in_threads(2, save)
        assert sorted(numbers) == [start + 1, start + 2], numbers


class TestProvenance:
    @responses.activate
    def test_from_the_ai_core_request_to_the_ml_item(self, settings, auth_client, client_for, ml_user, chat):
        settings.AI_CORE_URL = "http://ai-core.test"
        responses.post(GENERATE, json={"content": "Ответ", "tokens_used": 5})
        tutor = chat.tutor
        tutor_version_save(tutor=tutor, content=content_of(tutor, system_prompt="Версия два"))

        sent = auth_client.post(f"/api/v1/chats/{chat.id}/messages/", {"content": "Вопрос"}, format="json")

        assert json.loads(responses.calls[0].request.body)["tutor_version"] == 2
        assert json.loads(responses.calls[0].request.body)["system_prompt"] == "Версия два"
        reply = sent.json()["assistant_message"]
        assert reply["tutor_version"] == 2
        stored = Message.objects.get(pk=reply["id"])
        assert stored.tutor_version.number == 2
        # A later edit does not rewrite what produced the reply.
        tutor_version_save(tutor=tutor, content=content_of(tutor, system_prompt="Версия три"))
        body = {"message": reply["id"], "feedback_type": "detailed", "rating": 2}
        assert auth_client.post("/api/v1/feedback/", body, format="json").status_code == 201
        assert Feedback.objects.get().tutor_version.number == 2
        page = auth_client.get(f"/api/v1/chats/{chat.id}/messages/").json()["results"]
        assert [m["tutor_version"] for m in page] == [None, 2]

        ml = client_for(ml_user)
        (item,) = ml.get("/api/v1/ml/feedback/").json()["results"]
        assert item["tutor_version"] == 2
        assert ml.get("/api/v1/ml/feedback/", {"tutor": tutor.id, "tutor_version": 2}).json()["count"] == 1
        assert ml.get("/api/v1/ml/feedback/", {"tutor": tutor.id, "tutor_version": 3}).json()["count"] == 0
        assert ml.get("/api/v1/ml/feedback/", {"tutor_version": "two"}).status_code == 400


VERSIONS = "/api/v1/ml/tutors/{}/versions/"


def reply_from(chat, version: TutorVersion, **feedback) -> Message:
    asked = Message.objects.create(chat=chat, role="user", content="?")
    reply = Message.objects.create(
        chat=chat, role="assistant", content="!", reply_to=asked, tutor_version=version
    )
    if feedback:
        feedback_on(reply, tutor_version=version, **feedback)
    return reply


class TestVersionStatistics:
    def test_per_version_replies_ratings_and_reactions(self, client_for, ml_user, chat, tutor, admin_user):
        first = tutor.current_version
        second = tutor_version_save(tutor=tutor, content=content_of(tutor, system_prompt="v2"), by=admin_user)
        reply_from(chat, first, feedback_type="detailed", rating=2)
        reply_from(chat, first, feedback_type="detailed", rating=3)
        reply_from(chat, first, feedback_type="quick", quick_reaction="incorrect")
        reply_from(chat, second, feedback_type="detailed", rating=5)
        reply_from(chat, second)

        response = client_for(ml_user).get(VERSIONS.format(tutor.id))

        assert response.status_code == 200
        newest, oldest = response.json()
        assert (newest["number"], newest["system_prompt"], newest["created_by"]) == (2, "v2", "admin")
        assert (newest["replies"], newest["detailed_count"], newest["rating_avg"]) == (2, 1, "5.00")
        assert newest["reactions"] == {
            "understood": 0, "too_hard": 0, "need_more_examples": 0, "too_easy": 0, "incorrect": 0
        }  # fmt: skip
        assert (oldest["number"], oldest["replies"], oldest["detailed_count"], oldest["rating_avg"]) == (
            1, 3, 2, "2.50"
        )  # fmt: skip
        assert oldest["reactions"]["incorrect"] == 1
        assert oldest["created_by"] is None

    def test_a_version_without_ratings_has_a_null_mean(self, client_for, ml_user, tutor):
        (only,) = client_for(ml_user).get(VERSIONS.format(tutor.id)).json()
        assert (only["replies"], only["detailed_count"], only["rating_avg"]) == (0, 0, None)

    @pytest.mark.parametrize("count", [1, 50])
    def test_query_count_does_not_grow_with_versions(
        self, client_for, ml_user, chat, tutor, count, django_assert_num_queries
    ):
        for n in range(count - 1):
            version = tutor_version_save(tutor=tutor, content=content_of(tutor, system_prompt=f"v{n}"))
            reply_from(chat, version, feedback_type="detailed", rating=1 + n % 5)
        client = client_for(ml_user)
        # 1 token user, 2-3 permissions, 4 the tutor, 5 its versions with
        # their authors, 6 replies per version, 7 feedback per version.
        with django_assert_num_queries(7):
            body = client.get(VERSIONS.format(tutor.id)).json()
        assert len(body) == count

    def test_editors_and_the_ml_team_only(
        self, client_for, make_user, make_staff, auth_client, api_client, tutor
    ):
        editor = make_staff(CONTENT_EDITORS)
        assert client_for(editor).get(VERSIONS.format(tutor.id)).status_code == 200
        assert client_for(make_user(is_staff=True)).get(VERSIONS.format(tutor.id)).status_code == 403
        assert auth_client.get(VERSIONS.format(tutor.id)).status_code == 403
        assert api_client.get(VERSIONS.format(tutor.id)).status_code == 401

    def test_unknown_tutor_is_404(self, client_for, ml_user):
        assert client_for(ml_user).get(VERSIONS.format(999999)).status_code == 404
