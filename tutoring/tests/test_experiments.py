"""Issue 30: experiments between tutor versions. Assignment by hash and
weight, every reply path answered with the arm's version (the fake AI-Core
records what it was asked), start/stop/promote and the one-running
constraint, the statistics against a hand-computed case, the guardrail at
its threshold, and the arm everywhere the ML team looks."""

import json
from collections import Counter
from decimal import Decimal

import pytest
import responses
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.roles import CONTENT_EDITORS
from chats.models import Chat, Message
from conftest import PASSWORD, bearer_client, feedback_on, requires_postgresql, run_in_threads
from feedback.experiments import experiment_stats, rating_interval
from feedback.models import Feedback
from feedback.training import training_export_claim, training_lines
from tutor_platform.pseudonyms import student_key
from tutoring.experiments import arm_for, experiment_promote, experiment_start, experiment_stop, guard
from tutoring.models import Experiment, ExperimentArm, ExperimentEvent, Tutor, TutorVersion
from tutoring.services import TutorContent, tutor_version_save
from usage import services as usage
from usage.models import ArmStudentUsage

pytestmark = pytest.mark.django_db

AI_URL = "http://ai-core.test"
GENERATE = f"{AI_URL}/api/v1/generate"
EXPERIMENTS = "/api/v1/ml/experiments/"


@pytest.fixture
def ai_core(settings):
    settings.AI_CORE_URL = AI_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(GENERATE, json={"content": "Подумайте: что известно?", "tokens_used": 5})
        yield mock


def asked(mock) -> list[dict]:
    return [json.loads(call.request.body) for call in mock.calls if call.request.url == GENERATE]


@pytest.fixture
def versions(tutor) -> tuple[TutorVersion, TutorVersion]:
    """v1 (the fixture's) and v2, a new prompt that stays a draft for students:
    v1 is made current again (v3) so that only the experiment sends v2."""
    v1 = tutor.current_version
    v2 = tutor_version_save(
        tutor=tutor, content=TutorContent("Новый промпт: задавай наводящие вопросы.", "math-v2", "kb-math-2")
    )
    tutor_version_save(tutor=tutor, content=TutorContent.of(v1))
    return v1, v2


def make_experiment(tutor, arms, *, name="Наводящие вопросы", start=True, by=None) -> Experiment:
    experiment = Experiment.objects.create(tutor=tutor, name=name, created_by=by)
    for position, (version, weight) in enumerate(arms):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=weight)
    if start:
        experiment_start(experiment=experiment, by=by)
    experiment.refresh_from_db()
    return experiment


def student_in(make_user, experiment, letter: str) -> User:
    """A new student whose key falls in the arm `letter`."""
    arms = list(experiment.arms.all())
    while True:
        student = make_user()
        if arm_for(arms, student_key(student.pk), experiment.pk).letter == letter:
            return student
        student.delete()


class TestAssignment:
    @pytest.mark.parametrize("weights", [(50, 50), (70, 30), (10, 20, 30, 40), (25, 25, 25, 25), (1, 99)])
    def test_ten_thousand_keys_split_by_weight_within_two_points(self, weights):
        arms = [ExperimentArm(position=i, weight=w) for i, w in enumerate(weights)]
        counts = Counter(arm_for(arms, student_key(pk), 7).position for pk in range(1, 10_001))
        for position, weight in enumerate(weights):
            assert abs(counts[position] / 100 - weight) <= 2, (counts, weights)

    def test_a_student_keeps_their_arm_and_experiments_split_independently(self):
        arms = [ExperimentArm(position=0, weight=50), ExperimentArm(position=1, weight=50)]
        first = [arm_for(arms, student_key(pk), 1).position for pk in range(1, 2001)]
        assert first == [arm_for(arms, student_key(pk), 1).position for pk in range(1, 2001)]
        second = [arm_for(arms, student_key(pk), 2).position for pk in range(1, 2001)]
        same = sum(a == b for a, b in zip(first, second, strict=True))
        assert 900 < same < 1100  # another experiment is another coin toss

    def test_a_halted_arm_gives_its_students_to_the_first_and_no_one_else_moves(self):
        arms = [ExperimentArm(position=i, weight=w) for i, w in enumerate((40, 30, 30))]
        before = {pk: arm_for(arms, student_key(pk), 3).position for pk in range(1, 3001)}
        arms[1].halted_at = "2026-12-06T00:00:00Z"
        after = {pk: arm_for(arms, student_key(pk), 3).position for pk in range(1, 3001)}
        for pk, position in before.items():
            assert after[pk] == (0 if position == 1 else position)


class TestEveryReplyPath:
    @pytest.mark.django_db(transaction=True)  # the streamed reply is saved by a thread of its own
    def test_send_stream_regenerate_and_reply_use_the_arms_version(self, make_user, tutor, versions, ai_core):
        v1, v2 = versions
        experiment = make_experiment(tutor, [(v1, 50), (v2, 50)])
        student = student_in(make_user, experiment, "B")
        chat = Chat.objects.create(user=student, tutor=tutor)
        client = bearer_client(student)
        url = f"/api/v1/chats/{chat.pk}"

        assert (
            client.post(f"{url}/messages/", {"content": "Как решить уравнение?"}, format="json").status_code
            == 201
        )
        streamed = client.post(
            f"{url}/messages/", {"content": "А дальше?"}, format="json", HTTP_ACCEPT="text/event-stream"
        )
        b"".join(streamed.streaming_content)
        assert client.post(f"{url}/regenerate/").status_code == 201
        ai_core.replace(responses.POST, GENERATE, status=500)
        assert client.post(f"{url}/messages/", {"content": "Третий вопрос"}, format="json").status_code == 502
        ai_core.replace(responses.POST, GENERATE, json={"content": "Ответ на третий."})
        assert client.post(f"{url}/reply/").status_code == 201

        bodies = asked(ai_core)
        assert len(bodies) == 5
        for body in bodies:
            assert (body["system_prompt"], body["model_id"], body["knowledge_base_id"], body["tutor_version"]) == (
                v2.system_prompt, "math-v2", "kb-math-2", v2.number,
            )  # fmt: skip
            assert body["experiment_arm"] == {"experiment": experiment.pk, "arm": "B"}
        replies = Message.objects.filter(chat=chat, role="assistant")
        assert replies.count() == 4
        arm_b = experiment.arms.get(position=1)
        assert set(replies.values_list("experiment_arm_id", "tutor_version_id")) == {(arm_b.pk, v2.pk)}
        # The rollup the statistics read: four replies, one regenerated, the failed attempt.
        tally = ArmStudentUsage.objects.get(arm=arm_b, user=student)
        assert (tally.replies, tally.regenerated, tally.failures, tally.withheld) == (4, 1, 1, 0)
        assert not ArmStudentUsage.objects.exclude(pk=tally.pk).exists()

    def test_the_first_arm_gets_the_first_arms_version(self, make_user, tutor, versions, ai_core):
        v1, v2 = versions
        experiment = make_experiment(tutor, [(v2, 50), (v1, 50)])
        student = student_in(make_user, experiment, "B")
        chat = Chat.objects.create(user=student, tutor=tutor)
        assert (
            bearer_client(student)
            .post(f"/api/v1/chats/{chat.pk}/messages/", {"content": "?"}, format="json")
            .status_code
            == 201
        )
        assert asked(ai_core)[0]["system_prompt"] == v1.system_prompt

    def test_stop_returns_everyone_to_the_current_version_at_once(
        self, make_user, tutor, versions, ai_core, editor
    ):
        v1, v2 = versions
        experiment = make_experiment(tutor, [(v1, 1), (v2, 99)])
        student = student_in(make_user, experiment, "B")
        chat = Chat.objects.create(user=student, tutor=tutor)
        client = bearer_client(student)
        client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": "Первый"}, format="json")
        experiment_stop(experiment=experiment, by=editor)
        client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": "Второй"}, format="json")
        first, second = asked(ai_core)
        assert first["system_prompt"] == v2.system_prompt and first["experiment_arm"]["arm"] == "B"
        tutor.refresh_from_db()
        assert second["tutor_version"] == tutor.current_version.number and "experiment_arm" not in second
        assert Message.objects.filter(role="assistant").latest("id").experiment_arm_id is None
        assert tutor.running_experiment_id is None

    def test_outside_an_experiment_a_send_costs_no_query_more_and_inside_two(
        self, auth_client, chat, tutor, versions, ai_core
    ):
        def statements() -> int:
            with CaptureQueriesContext(connection) as queries:
                assert (
                    auth_client.post(
                        f"/api/v1/chats/{chat.pk}/messages/", {"content": "?"}, format="json"
                    ).status_code
                    == 201
                )
            return len(queries)

        statements()  # the chat's first message also gives it its title
        outside = statements()
        make_experiment(tutor, [(versions[0], 50), (versions[1], 50)])
        # The arms with their versions; the arm's rollup (on PostgreSQL, in
        # the reply's one statement).
        assert statements() == outside + (1 if connection.vendor == "postgresql" else 2)


@pytest.fixture
def editor(make_staff) -> User:
    return make_staff(CONTENT_EDITORS)


class TestStates:
    def test_start_checks_the_arms(self, tutor, versions, make_tutor):
        v1, v2 = versions
        with pytest.raises(ValidationError, match="sum to 100"):
            make_experiment(tutor, [(v1, 50), (v2, 40)])
        with pytest.raises(ValidationError, match="2 to 4 arms"):
            make_experiment(tutor, [(v1, 100)])
        other = make_tutor().current_version
        with pytest.raises(ValidationError, match="version of the experiment's tutor"):
            make_experiment(tutor, [(v1, 50), (other, 50)])
        assert not Experiment.objects.exclude(state="draft").exists()
        assert Tutor.objects.get(pk=tutor.pk).running_experiment_id is None

    def test_one_running_per_tutor_by_the_service_and_by_the_database(self, tutor, versions, editor):
        first = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)], by=editor)
        second = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)], start=False)
        with pytest.raises(ValidationError, match="already has a running"):
            experiment_start(experiment=second, by=editor)
        with pytest.raises(IntegrityError), transaction.atomic():
            Experiment.objects.filter(pk=second.pk).update(state="running")
        assert Tutor.objects.get(pk=tutor.pk).running_experiment_id == first.pk
        assert list(first.events.values_list("action", "by")) == [("started", editor.pk)]

    def test_promote_makes_a_new_current_version_and_stops(self, tutor, versions, editor):
        v1, v2 = versions
        experiment = make_experiment(tutor, [(v1, 50), (v2, 50)])
        before = tutor.current_version.number
        made = experiment_promote(experiment=experiment, arm=experiment.arms.get(position=1), by=editor)
        tutor.refresh_from_db()
        assert made.number == before + 1 == tutor.current_version.number
        assert TutorContent.of(tutor.current_version) == TutorContent.of(v2)
        assert tutor.current_version.created_by == editor and "B" in tutor.current_version.note
        experiment.refresh_from_db()
        assert experiment.state == "stopped" and experiment.stopped_at is not None
        assert tutor.running_experiment_id is None
        event = experiment.events.get(action="promoted")
        assert (event.by, event.details) == (
            editor,
            {"arm": "B", "version": v2.number, "new_version": made.number},
        )
        with pytest.raises(ValidationError, match="Only a running"):
            experiment_stop(experiment=experiment, by=editor)


@requires_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_on_one_tutor_start_exactly_one(tutor, versions):
    drafts = [make_experiment(tutor, [(versions[0], 50), (versions[1], 50)], start=False) for _ in range(8)]

    def start(i: int) -> str:
        try:
            experiment_start(experiment=drafts[i], by=None)
        except ValidationError:
            return "refused"
        return "started"

    results = run_in_threads(len(drafts), start)
    assert sorted(results) == ["refused"] * 7 + ["started"]
    running = Experiment.objects.get(state="running")
    assert Tutor.objects.get(pk=tutor.pk).running_experiment_id == running.pk
    assert ExperimentEvent.objects.filter(action="started").count() == 1


def reply_in(
    arm: ExperimentArm, chat: Chat, *, latency: int, regenerated: bool = False, withheld: bool = False
):
    """A reply of `arm`, counted as the send flow counts it (and its regeneration)."""
    asked = Message.objects.create(chat=chat, role="user", content="Вопрос")
    reply = Message.objects.create(
        chat=chat, role="assistant", content="Ответ", reply_to=asked, is_current=not regenerated,
        experiment_arm=arm, tutor_version=arm.version, latency_ms=latency,
        moderation=Message.Moderation.WITHHELD if withheld else "",
        metadata={"learner": {"struggle": {"level": "some" if latency > 300 else "none"}}},
    )  # fmt: skip
    usage.record_arm_reply(arm_id=arm.pk, user_id=chat.user_id, reply=reply)
    if regenerated:
        usage.record_arm_event(arm_id=arm.pk, user_id=chat.user_id, counter="regenerated")
    return reply


def rate(reply: Message, **fields) -> Feedback:
    """Feedback on an arm's reply, counted as feedback_submit counts it."""
    feedback = feedback_on(reply, experiment_arm=reply.experiment_arm, **fields)
    usage.record_arm_feedback(
        arm_id=reply.experiment_arm_id, user_id=reply.chat.user_id, before=None, after=feedback
    )
    return feedback


def fail(arm: ExperimentArm, chat: Chat) -> None:
    usage.record_arm_event(arm_id=arm.pk, user_id=chat.user_id, counter="failures")


class TestStatistics:
    @pytest.fixture
    def case(self, make_user, tutor, versions):
        """Arm A: two students, five replies (one regenerated, one withheld),
        ratings 2, 3, 3, 4, one `too_hard`, one AI-Core failure. Arm B: one reply."""
        experiment = make_experiment(tutor, [(versions[0], 60), (versions[1], 40)])
        a, b = experiment.arms.order_by("position")
        anna, boris = make_user(), make_user()
        chats = [Chat.objects.create(user=anna, tutor=tutor), Chat.objects.create(user=boris, tutor=tutor)]
        replies = [
            reply_in(a, chats[0], latency=100),
            reply_in(a, chats[0], latency=400, regenerated=True),
            reply_in(a, chats[0], latency=300),
            reply_in(a, chats[1], latency=200, withheld=True),
            reply_in(a, chats[1], latency=1000),
        ]
        for reply, rating in zip(replies, (2, 3, 3, 4), strict=False):
            rate(reply, feedback_type="detailed", rating=rating)
        rate(replies[4], quick_reaction="too_hard")
        fail(a, chats[1])
        reply_in(b, Chat.objects.create(user=make_user(), tutor=tutor), latency=50)
        return experiment, anna, boris

    def test_the_figures_match_a_hand_computed_case(self, case):
        experiment, *_ = case
        first, second = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk]
        assert (first.letter, first.weight, first.students, first.replies) == ("A", 60, 2, 5)
        assert (first.detailed_count, first.rating_avg) == (4, Decimal("3.00"))
        # s² = (1 + 0 + 0 + 1) / 3, half-width t(3) · s / √4 = 3.182 · 0.8165 / 2 = 1.299
        assert first.rating_ci == (Decimal("1.70"), Decimal("4.30"))
        assert first.reaction_shares == {
            "understood": 0.0, "too_hard": 0.2, "need_more_examples": 0.0, "too_easy": 0.0, "incorrect": 0.0,
        }  # fmt: skip
        assert first.regenerate_rate == 0.2
        assert first.failure_rate == round(2 / 6, 4)  # (1 failure + 1 withheld) / (5 replies + 1 failure)
        # Buckets ≤250: 2, ≤500: 2, ≤1000: 1; p50 = 250 + 250 · 0.5 / 2, p95 = 500 + 500 · 0.75 / 1
        assert (first.latency_p50_ms, first.latency_p95_ms) == (312, 875)
        assert first.struggle == {"none": 0.6, "some": 0.4, "high": 0.0}
        assert (second.letter, second.replies, second.rating_ci, second.latency_p50_ms) == ("B", 1, None, 125)

    def test_the_interval_is_students_t_clipped_to_the_scale(self):
        assert rating_interval(1, 4.0, 16.0) is None
        assert rating_interval(2, 4.5, 41.0) == (Decimal("1.00"), Decimal("5.00"))  # t(1) = 12.706
        low, high = rating_interval(100, 3.0, 100 * 9 + 99 * 1.0)  # s = 1
        assert (low, high) == (Decimal("2.80"), Decimal("3.20"))  # 1.96 · 1 / 10

    def test_erasure_and_revoked_consent_take_a_student_out(self, case, client_for):
        experiment, anna, boris = case
        assert (
            client_for(anna).delete("/api/v1/auth/me/", {"password": PASSWORD}, format="json").status_code
            == 204
        )
        first = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk][0]
        assert (first.students, first.replies, first.detailed_count, first.failures) == (1, 2, 1, 1)
        assert client_for(boris).post("/api/v1/feedback/revoke-consent/").status_code == 200
        first = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk][0]
        assert (first.students, first.replies, first.detailed_count, first.failures) == (0, 0, 0, 0)
        # Consent given again: counted again.
        assert (
            client_for(boris).patch("/api/v1/auth/me/", {"allow_training": True}, format="json").status_code
            == 200
        )
        assert experiment_stats(experiment_ids=[experiment.pk])[experiment.pk][0].replies == 2

    def test_a_constant_number_of_queries(self, case, django_assert_num_queries, make_user, tutor):
        experiment, *_ = case
        with django_assert_num_queries(2):
            experiment_stats(experiment_ids=[experiment.pk])
        a = experiment.arms.get(position=0)
        for _ in range(20):
            rate(reply_in(a, Chat.objects.create(user=make_user(), tutor=tutor), latency=10),
                 feedback_type="detailed", rating=5)  # fmt: skip
        with django_assert_num_queries(2):
            experiment_stats(experiment_ids=[experiment.pk])

    def test_feedback_changes_and_deletions_move_the_figures(self, make_user, tutor, versions, ai_core):
        experiment = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)])
        student = student_in(make_user, experiment, "A")
        chat = Chat.objects.create(user=student, tutor=tutor)
        client = bearer_client(student)
        reply = client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": "?"}, format="json").json()
        message = reply["assistant_message"]["id"]

        def figures() -> tuple:
            arm = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk][0]
            return (
                arm.replies,
                arm.detailed_count,
                arm.rating_avg,
                arm.reactions["too_hard"],
                arm.reactions["incorrect"],
            )

        body = {"message": message, "feedback_type": "detailed", "rating": 2}
        assert client.post("/api/v1/feedback/", body, format="json").status_code == 201
        assert figures() == (1, 1, Decimal("2.00"), 0, 0)
        assert client.post("/api/v1/feedback/", {**body, "rating": 5}, format="json").status_code == 200
        assert figures() == (1, 1, Decimal("5.00"), 0, 0)
        quick = {"message": message, "feedback_type": "quick", "quick_reaction": "too_hard"}
        created = client.post("/api/v1/feedback/", quick, format="json").json()
        assert figures() == (1, 1, Decimal("5.00"), 1, 0)
        client.post("/api/v1/feedback/", {**quick, "quick_reaction": "incorrect"}, format="json")
        assert figures() == (1, 1, Decimal("5.00"), 0, 1)
        assert client.delete(f"/api/v1/feedback/{created['id']}/").status_code == 204
        assert figures() == (1, 1, Decimal("5.00"), 0, 0)


class TestGuardrail:
    @pytest.fixture
    def arms(self, make_user, tutor, versions, settings):
        settings.EXPERIMENT_GUARDRAIL_MARGIN = 0.2
        experiment = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)])
        a, b = experiment.arms.order_by("position")
        chat = Chat.objects.create(user=make_user(), tutor=tutor)
        return experiment, a, b, chat

    def fill(self, arm, chat, replies: int, bad: int) -> None:
        for n in range(replies):
            reply = reply_in(arm, chat, latency=100)
            if n < bad:
                rate(reply, quick_reaction="incorrect" if n % 2 else "too_hard")

    def test_it_fires_exactly_at_the_margin(self, arms, make_user):
        experiment, a, b, chat = arms
        self.fill(a, chat, 30, 0)
        self.fill(b, chat, 30, 5)  # 5/30 = 0.167 < 0.2
        assert guard(experiment) == []
        rate(
            Message.objects.filter(experiment_arm=b, feedback__isnull=True).first(), quick_reaction="too_hard"
        )
        halts = guard(experiment)  # 6/30 = 0.2: exactly the margin
        assert [(h.arm, h.figure, h.value, h.first_arm, h.margin) for h in halts] == [
            ("B", "bad_share", 0.2, 0.0, 0.2)
        ]
        b.refresh_from_db()
        assert b.halted_at is not None and b.halt_figures["figure"] == "bad_share"
        event = experiment.events.get(action="arm_halted")
        assert event.by is None and event.details["value"] == 0.2
        assert guard(experiment) == []  # recorded once
        # Its students now get the first arm's version.
        student = student_in(make_user, experiment, "A")
        arms_now = list(experiment.arms.select_related("version"))
        assert (
            all(arm_for(arms_now, student_key(pk), experiment.pk).letter == "A" for pk in range(1, 500))
            and student
        )

    def test_it_needs_thirty_replies_in_each(self, arms):
        experiment, a, b, chat = arms
        self.fill(a, chat, 29, 0)
        self.fill(b, chat, 30, 30)
        assert guard(experiment) == []

    def test_failures_count_too_and_the_job_runs_it(self, arms, capsys):
        _, a, b, chat = arms
        self.fill(a, chat, 30, 0)
        self.fill(b, chat, 30, 0)
        for _ in range(8):  # 8 / 38 = 0.21
            fail(b, chat)
        call_command("guard_experiments")
        assert "arm B" in capsys.readouterr().out
        b.refresh_from_db()
        assert b.halt_figures["figure"] == "failure_rate"


class TestMLTeam:
    def test_the_api_lists_experiments_with_their_arms(
        self, client_for, ml_user, editor, user, tutor, versions
    ):
        experiment = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)], by=editor)
        for member in (ml_user, editor):
            listed = client_for(member).get(EXPERIMENTS)
            assert listed.status_code == 200, listed.content
            item = listed.json()["results"][0]
            assert (item["id"], item["state"], item["tutor"]["id"]) == (experiment.pk, "running", tutor.pk)
            assert [(arm["arm"], arm["version"], arm["weight"]) for arm in item["arms"]] == [
                ("A", versions[0].number, 50), ("B", versions[1].number, 50)
            ]  # fmt: skip
            assert item["events"][0]["action"] == "started" and item["events"][0]["by"] == editor.username
            detail = client_for(member).get(f"{EXPERIMENTS}{experiment.pk}/").json()
            assert detail["arms"][1]["rating_ci"] is None and detail["arms"][1]["replies"] == 0
        assert client_for(user).get(EXPERIMENTS).status_code == 403
        assert client_for(ml_user).get(f"{EXPERIMENTS}?state=draft").json()["results"] == []
        assert client_for(ml_user).get(f"{EXPERIMENTS}?state=bogus").status_code == 400
        assert client_for(ml_user).get(f"{EXPERIMENTS}999999/").status_code == 404

    def test_the_list_costs_the_same_queries_for_one_or_many(
        self, client_for, ml_user, tutor, versions, make_tutor
    ):
        make_experiment(tutor, [(versions[0], 50), (versions[1], 50)])
        client = client_for(ml_user)
        with CaptureQueriesContext(connection) as one:
            client.get(EXPERIMENTS)
        for _ in range(3):
            other = make_tutor()
            v2 = tutor_version_save(tutor=other, content=TutorContent("Другой", "m"))
            make_experiment(other, [(Tutor.objects.get(pk=other.pk).versions.get(number=1), 30), (v2, 70)])
        with CaptureQueriesContext(connection) as many:
            assert len(client.get(EXPERIMENTS).json()["results"]) == 4
        assert len(many) == len(one)

    def test_the_arm_reaches_ml_items_the_export_and_pairs(
        self, make_user, tutor, versions, ai_core, client_for, ml_user, client, admin_user
    ):
        experiment = make_experiment(tutor, [(versions[0], 50), (versions[1], 50)])
        student = student_in(make_user, experiment, "B")
        student.allow_training = True
        student.save()
        chat = Chat.objects.create(user=student, tutor=tutor)
        client = bearer_client(student)
        client.post(f"/api/v1/chats/{chat.pk}/messages/", {"content": "Вопрос"}, format="json")
        first = Message.objects.get(role="assistant")
        client.post(f"/api/v1/chats/{chat.pk}/regenerate/")
        second = Message.objects.filter(role="assistant").latest("id")
        for reply, rating in ((first, 5), (second, 2)):
            body = {
                "message": reply.pk,
                "feedback_type": "detailed",
                "rating": rating,
                "allow_training": True,
            }
            assert client.post("/api/v1/feedback/", body, format="json").status_code == 201
        label = {"experiment": experiment.pk, "arm": "B"}
        ml = client_for(ml_user)
        items = ml.get("/api/v1/ml/feedback/").json()["results"]
        assert [item["experiment_arm"] for item in items] == [label, label]
        pairs = ml.get("/api/v1/ml/preference-pairs/").json()["results"]
        assert (
            pairs and pairs[0]["chosen"]["experiment_arm"] == label == pairs[0]["rejected"]["experiment_arm"]
        )
        client.force_login(admin_user)
        triage = client.get("/admin/feedback/feedback/").content.decode()
        assert triage.count(f"v{versions[1].number} · B") == 2  # the version column names the arm
        batch = training_export_claim(by=ml_user)
        assert [json.loads(line)["experiment_arm"] for line in training_lines(batch.id)] == [label, label]
