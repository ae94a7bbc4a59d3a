import pytest
from django.contrib.auth.models import Group

from accounts.roles import CONTENT_EDITORS
from conftest import feedback_on
from feedback.models import Feedback

ML_FEEDBACK = "/api/v1/ml/feedback/"
MARK = "/api/v1/ml/feedback/mark-processed/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_feedback(user, chat, make_exchange):
    def make(**fields) -> Feedback:
        _asked, replied = make_exchange(
            chat, question="Что такое синус?", answer="Отношение катета к гипотенузе"
        )
        return feedback_on(replied, **({"feedback_type": "detailed", "rating": 4} | fields))

    return make


@pytest.fixture
def ml_client(client_for, ml_user):
    return client_for(ml_user)


class TestPermissions:
    def test_anonymous_is_401(self, api_client):
        assert api_client.get(ML_FEEDBACK).status_code == 401
        assert api_client.post(MARK, {"ids": [1]}, format="json").status_code == 401

    def test_student_is_403(self, auth_client, make_feedback):
        feedback = make_feedback()
        response = auth_client.get(ML_FEEDBACK)
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert auth_client.post(MARK, {"ids": [feedback.id]}, format="json").status_code == 403
        feedback.refresh_from_db()
        assert feedback.processed is False

    def test_the_ml_team_and_superusers_are_allowed(self, client_for, admin_user, ml_client):
        assert client_for(admin_user).get(ML_FEEDBACK).status_code == 200
        assert ml_client.get(ML_FEEDBACK).status_code == 200

    def test_content_editors_and_other_staff_are_403(self, client_for, make_user, make_staff, make_feedback):
        # Editors are staff (they use the admin), but students' feedback is not theirs to read.
        feedback = make_feedback()
        editor = make_staff(CONTENT_EDITORS)
        for person in (editor, make_user(is_staff=True)):
            client = client_for(person)
            assert client.get(ML_FEEDBACK).status_code == 403
            assert client.post(MARK, {"ids": [feedback.id]}, format="json").status_code == 403
        feedback.refresh_from_db()
        assert feedback.processed is False


class TestQueue:
    def test_item_carries_the_training_context(self, ml_client, make_feedback, chat):
        feedback = make_feedback(positive_text="Ясно", allow_training=True)
        item = ml_client.get(ML_FEEDBACK).json()["results"][0]
        assert item["id"] == feedback.id
        assert item["tutor"] == {"id": chat.tutor.id, "name": "Анна", "model_id": "math-v1"}
        assert item["reply"] == {
            "content": "Отношение катета к гипотенузе",
            "metadata": feedback.reply_metadata,
        }
        assert item["prompt"] == "Что такое синус?"
        assert (item["rating"], item["positive_text"], item["allow_training"]) == (4, "Ясно", True)

    def test_defaults_to_unprocessed(self, ml_client, make_feedback):
        todo = make_feedback()
        make_feedback(processed=True)
        assert [i["id"] for i in ml_client.get(ML_FEEDBACK).json()["results"]] == [todo.id]
        assert ml_client.get(ML_FEEDBACK, {"processed": "true"}).json()["count"] == 1
        assert ml_client.get(ML_FEEDBACK, {"processed": "false"}).json()["count"] == 1

    def test_filters(self, ml_client, make_feedback, make_tutor, chat):
        allowed = make_feedback(allow_training=True)
        quick = make_feedback(feedback_type="quick", rating=None, quick_reaction="too_hard")
        other_tutor = make_tutor()
        elsewhere = make_feedback(tutor=other_tutor)

        def ids(**params):
            return {i["id"] for i in ml_client.get(ML_FEEDBACK, params).json()["results"]}

        assert ids(allow_training="true") == {allowed.id}
        assert ids(feedback_type="quick") == {quick.id}
        assert ids(tutor=other_tutor.id) == {elsewhere.id}
        assert ids(created_since="2000-01-01T00:00:00Z") == {allowed.id, quick.id, elsewhere.id}
        assert ids(created_since="2999-01-01T00:00:00Z") == set()
        # An offset PostgreSQL would refuse (found by the fuzzer): compared in UTC.
        assert ids(created_since="2000-01-01T00:00:00+18:27") == {allowed.id, quick.id, elsewhere.id}
        assert ml_client.get(ML_FEEDBACK, {"created_since": "0001-01-01T00:00:00+05:00"}).status_code == 400

    @pytest.mark.parametrize(
        "params", [{"feedback_type": "nope"}, {"processed": "maybe"}, {"processed": ""}, {"tutor": "x"}]
    )
    def test_bad_filter_is_400(self, ml_client, params):
        assert ml_client.get(ML_FEEDBACK, params).status_code == 400

    @pytest.mark.parametrize(("rows", "queries"), [(1, 4), (50, 5)])
    def test_query_count_is_constant(
        self, ml_client, make_feedback, django_assert_num_queries, rows, queries
    ):
        for _ in range(rows):
            make_feedback()
        # 1: token user, 2-3: the user's own and group permissions, 4: page
        # joined with tutor (one row more), 5: count, when longer than a page.
        with django_assert_num_queries(queries):
            assert ml_client.get(ML_FEEDBACK).status_code == 200


class TestMarkProcessed:
    def test_marks_and_reports_not_found(self, ml_client, ml_user, make_feedback):
        first, second = make_feedback(), make_feedback()
        response = ml_client.post(MARK, {"ids": [first.id, second.id, 999999]}, format="json")
        assert response.status_code == 200
        assert response.json() == {"updated": 2, "not_found": [999999]}
        for feedback in (first, second):
            feedback.refresh_from_db()
            assert feedback.processed is True
            assert feedback.processed_by == ml_user
            assert feedback.processed_at is not None

    def test_is_idempotent(self, ml_client, make_feedback, make_user, client_for):
        colleague = make_user()
        colleague.groups.add(Group.objects.get(name="ML team"))
        feedback = make_feedback()
        ml_client.post(MARK, {"ids": [feedback.id]}, format="json")
        feedback.refresh_from_db()
        first_mark = (feedback.processed_at, feedback.processed_by_id)
        again = client_for(colleague).post(MARK, {"ids": [feedback.id]}, format="json")
        assert again.status_code == 200
        assert again.json() == {"updated": 0, "not_found": []}
        feedback.refresh_from_db()
        assert (feedback.processed_at, feedback.processed_by_id) == first_mark

    @pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": "1,2"}, {"ids": ["a"]}, {"ids": [0]}])
    def test_bad_body_is_400(self, ml_client, body):
        assert ml_client.post(MARK, body, format="json").status_code == 400
