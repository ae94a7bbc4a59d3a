"""Issue 30 in the admin (Django's test client; the browser flow is in
tutor_platform/tests/test_admin_browser.py): an editor sets up a draft,
starts, stops and promotes it; the ML team only looks."""

import pytest

from accounts.roles import CONTENT_EDITORS, ML_TEAM
from tutoring.models import Experiment, ExperimentArm, Tutor
from tutoring.services import TutorContent, tutor_version_save

pytestmark = pytest.mark.django_db

ADD = "/admin/tutoring/experiment/add/"


@pytest.fixture
def versions(tutor):
    v1 = tutor.current_version
    v2 = tutor_version_save(tutor=tutor, content=TutorContent("Задавай наводящие вопросы.", "math-v2"))
    tutor_version_save(tutor=tutor, content=TutorContent.of(v1))  # v3: v2 reaches students only by experiment
    return v1, v2


def draft_form(tutor, arms, *, initial: int = 0, **fields) -> dict:
    form = {
        "events-TOTAL_FORMS": 0, "events-INITIAL_FORMS": 0,
        "tutor": tutor.pk, "name": "Наводящие вопросы", "hypothesis": "Меньше «слишком сложно»",
        "arms-TOTAL_FORMS": len(arms), "arms-INITIAL_FORMS": initial, "arms-MIN_NUM_FORMS": 0, "arms-MAX_NUM_FORMS": 4,
        **fields,
    }  # fmt: skip
    for n, (position, version, weight) in enumerate(arms):
        form |= {f"arms-{n}-position": position, f"arms-{n}-version": version.pk, f"arms-{n}-weight": weight}
    return form


def test_an_editor_sets_up_starts_and_promotes(client, staff_in, tutor, versions):
    editor = staff_in(CONTENT_EDITORS)
    v1, v2 = versions
    assert client.get(ADD).status_code == 200
    created = client.post(ADD, draft_form(tutor, [(0, v1, 50), (1, v2, 50)]))
    assert created.status_code == 302, created.content.decode()[:3000]
    experiment = Experiment.objects.get()
    assert (experiment.state, experiment.created_by) == ("draft", editor)
    assert list(experiment.arms.values_list("position", "version", "weight")) == [
        (0, v1.pk, 50),
        (1, v2.pk, 50),
    ]

    page = client.get(f"/admin/tutoring/experiment/{experiment.pk}/change/").content.decode()
    assert "Start the experiment" in page or "Запустить эксперимент" in page
    assert client.get(f"/admin/tutoring/experiment/{experiment.pk}/start/").status_code == 405
    client.post(f"/admin/tutoring/experiment/{experiment.pk}/start/")
    experiment.refresh_from_db()
    assert experiment.state == "running"
    assert Tutor.objects.get(pk=tutor.pk).running_experiment_id == experiment.pk
    page = client.get(f"/admin/tutoring/experiment/{experiment.pk}/change/").content.decode()
    assert 'class="experiment-arms"' in page and "promote/" in page and 'name="_save"' not in page

    arm_b = experiment.arms.get(position=1)
    client.post(f"/admin/tutoring/experiment/{experiment.pk}/promote/{arm_b.pk}/")
    experiment.refresh_from_db()
    tutor.refresh_from_db()
    assert experiment.state == "stopped"
    assert (tutor.current_version.number, tutor.current_version.system_prompt) == (4, v2.system_prompt)
    assert list(experiment.events.values_list("action", "by")) == [
        ("started", editor.pk),
        ("promoted", editor.pk),
    ]


@pytest.mark.parametrize(
    ("arms", "error"),
    [
        ([(0, 1, 50), (1, 2, 40)], "100"),
        ([(0, 1, 100)], "2"),
        ([(0, 1, 50), (0, 2, 50)], "A"),
        ([(1, 1, 50), (2, 2, 50)], "A"),
        ([(0, 1, 50), (1, 1, 50)], "version"),
    ],
)
def test_a_bad_draft_is_refused_and_nothing_is_saved(client, staff_in, tutor, versions, arms, error):
    staff_in(CONTENT_EDITORS)
    by_number = {v.number: v for v in versions}
    response = client.post(ADD, draft_form(tutor, [(p, by_number[n], w) for p, n, w in arms]))
    assert response.status_code == 200
    assert "errornote" in response.content.decode() or "errorlist" in response.content.decode()
    assert not Experiment.objects.exists() and not ExperimentArm.objects.exists()


def test_a_version_of_another_tutor_is_refused(client, staff_in, tutor, versions, make_tutor):
    staff_in(CONTENT_EDITORS)
    other = make_tutor().current_version
    response = client.post(ADD, draft_form(tutor, [(0, versions[0], 50), (1, other, 50)]))
    assert response.status_code == 200 and not Experiment.objects.exists()


def test_the_ml_team_sees_but_cannot_change(client, staff_in, tutor, versions):
    staff_in(ML_TEAM)
    experiment = Experiment.objects.create(tutor=tutor, name="Черновик")
    for position, version in enumerate(versions):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=50)
    page = client.get(f"/admin/tutoring/experiment/{experiment.pk}/change/")
    assert page.status_code == 200 and "/start/" not in page.content.decode()
    assert client.post(f"/admin/tutoring/experiment/{experiment.pk}/start/").status_code == 403
    assert client.get(ADD).status_code == 403
    experiment.refresh_from_db()
    assert experiment.state == "draft"


def test_a_running_experiment_cannot_be_deleted_or_edited(client, staff_in, tutor, versions):
    staff_in(CONTENT_EDITORS)
    client.post(ADD, draft_form(tutor, [(0, versions[0], 50), (1, versions[1], 50)]))
    experiment = Experiment.objects.get()
    client.post(f"/admin/tutoring/experiment/{experiment.pk}/start/")
    assert (
        client.post(f"/admin/tutoring/experiment/{experiment.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    client.post(
        f"/admin/tutoring/experiment/{experiment.pk}/change/",
        draft_form(tutor, [(0, versions[0], 10), (1, versions[1], 90)], name="Другое"),
    )
    experiment.refresh_from_db()
    assert experiment.name == "Наводящие вопросы"
    assert list(experiment.arms.values_list("weight", flat=True)) == [50, 50]
    # A second draft on the same tutor cannot start while this one runs.
    client.post(ADD, draft_form(tutor, [(0, versions[0], 50), (1, versions[1], 50)], name="Второй"))
    second = Experiment.objects.get(name="Второй")
    client.post(f"/admin/tutoring/experiment/{second.pk}/start/")
    second.refresh_from_db()
    assert second.state == "draft"


def test_the_experiment_page_costs_eight_queries_whatever_its_arms_and_replies(
    client, admin_user, tutor, versions, make_user, django_assert_num_queries
):
    from chats.models import Chat, Message
    from tutoring.experiments import experiment_start
    from usage import services as usage

    v3 = tutor_version_save(tutor=tutor, content=TutorContent("Третий промпт.", "math-v3"))
    v4 = tutor_version_save(tutor=tutor, content=TutorContent("Четвёртый промпт.", "math-v4"))
    experiment = Experiment.objects.create(tutor=tutor, name="Четыре варианта")
    for position, version in enumerate((*versions, v3, v4)):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=25)
    experiment_start(experiment=experiment, by=admin_user)
    client.force_login(admin_user)
    page = f"/admin/tutoring/experiment/{experiment.pk}/change/"
    client.get(page)
    with django_assert_num_queries(8):
        assert client.get(page).status_code == 200
    for arm in experiment.arms.all():
        chat = Chat.objects.create(user=make_user(), tutor=tutor)
        for _ in range(5):
            asked = Message.objects.create(chat=chat, role="user", content="?")
            reply = Message.objects.create(
                chat=chat, role="assistant", content="!", reply_to=asked, latency_ms=90
            )
            usage.record_arm_reply(arm_id=arm.pk, user_id=chat.user_id, reply=reply)
    with django_assert_num_queries(8):
        table = client.get(page).content.decode().split('class="experiment-arms"')[1].split("</table>")[0]
    assert table.count("<td>5</td>") == 4  # each arm's five replies
