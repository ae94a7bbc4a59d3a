"""The admin in headless Chromium (Playwright), logging in through the real form.

Needs Debian's Chromium at /usr/bin/chromium (`.ci/run` installs it); no
browser is ever downloaded.
"""

import csv
import io
import json
import os
from pathlib import Path

import pytest
import responses
from django.contrib.auth.models import Group, Permission

from accounts.models import User
from accounts.roles import sync_roles
from chats.models import Chat, Message
from conftest import PASSWORD, bearer_client, feedback_on
from feedback.models import Feedback

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AI_URL = "http://ai-core.test"

pytestmark = [pytest.mark.browser, pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _roles():
    # Transactional tests flush the database, and with it the roles that the
    # data migration created: put them back the same way.
    sync_roles(Group, Permission)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the tests make between browser steps are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def staff_member(group: str) -> User:
    member = User.objects.create_user(
        email=f"{group.split()[0].lower()}@example.com", username=group.split()[0].lower(),
        password=PASSWORD, is_staff=True,
    )  # fmt: skip
    member.groups.add(Group.objects.get(name=group))
    return member


def log_in(page, live_server, user: User) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "/admin/login/" not in page.url


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture
def feedback_rows(user, chat):
    rows = []
    for n, (rating, text) in enumerate([(5, "Очень понятно"), (2, "Слишком сложно"), (4, "Хорошо")]):
        asked = Message.objects.create(chat=chat, role="user", content=f"Вопрос про корни №{n}")
        reply = Message.objects.create(
            chat=chat,
            role="assistant",
            content=f"Ответ про корни №{n}",
            reply_to=asked,
            metadata={"tokens_used": 9},
        )
        rows.append(
            feedback_on(
                reply, feedback_type="detailed", rating=rating, positive_text=text, allow_training=True
            )
        )
    return rows


def test_content_editor_changes_the_prompt_and_ai_core_gets_it(
    page, live_server, settings, tutor, user, client_for
):
    editor = staff_member("Content editors")
    log_in(page, live_server, editor)
    page.goto(f"{live_server.url}/admin/tutoring/tutor/{tutor.id}/change/")
    new_prompt = "Ты — Анна. Объясняй через примеры из жизни.\nОтвечай кратко."
    page.fill("#id_system_prompt", new_prompt)
    counter = page.locator(".system-prompt-count .chars")
    assert counter.inner_text() == str(len(new_prompt))
    assert page.locator("#id_rating").count() == 0  # computed: shown, not editable
    assert page.locator("#id_total_feedbacks").count() == 0
    screenshot(page, "admin-tutor-page.png")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    tutor.refresh_from_db()
    assert tutor.system_prompt.replace("\r\n", "\n") == new_prompt

    settings.AI_CORE_URL = AI_URL
    chat = Chat.objects.create(user=user, tutor=tutor)
    with responses.RequestsMock() as ai_core:
        ai_core.post(f"{AI_URL}/api/v1/generate", json={"content": "ok"})
        response = client_for(user).post(
            f"/api/v1/chats/{chat.id}/messages/", {"content": "Привет"}, format="json"
        )
        assert response.status_code == 201
        sent = json.loads(ai_core.calls[0].request.body)
    assert sent["system_prompt"] == tutor.system_prompt


def test_content_editor_tries_a_prompt_saves_it_compares_and_restores(page, live_server, settings, tutor):
    settings.AI_CORE_URL = "stub"
    original = tutor.system_prompt
    editor = staff_member("Content editors")
    log_in(page, live_server, editor)
    page.goto(f"{live_server.url}/admin/tutoring/tutor/{tutor.id}/change/")

    # Try the edited prompt before saving it: both answers side by side.
    page.fill("#id_system_prompt", "Ты — Анна. Объясняй через примеры из жизни.")
    page.fill("#try-it-question", "Что такое дробь?")
    page.click(".try-it-send")
    page.wait_for_function("document.querySelector('.try-it-draft').textContent.length > 0")
    assert page.locator(".try-it-saved").inner_text()
    assert "Сохранённая версия v1" in page.locator(".try-it").inner_text()
    screenshot(page, "admin-tutor-try-it.png")
    assert tutor.versions.count() == 1  # trying saved nothing

    # Save it with a note: version 2, in the history.
    page.fill("#id_note", "Примеры из жизни")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .info")
    assert "Сохранено как версия v2." in page.locator(".messagelist").inner_text()
    history = page.locator(".version-history").inner_text()
    assert "v2" in history and "Примеры из жизни" in history and "content" in history
    screenshot(page, "admin-tutor-history.png")

    # Compare the two versions side by side.
    page.click(".version-history >> text=Сравнить с предыдущей")
    page.wait_for_selector("table.diff")
    assert "Примеры из жизни" in page.content()
    assert "терпеливый" in page.locator("table.diff").inner_text()
    screenshot(page, "admin-tutor-diff.png")

    # Restore the old one: a new version, after a confirmation.
    page.click("text=Восстановить v1…")
    page.wait_for_selector("input[type=submit][value='Восстановить v1']")
    page.click("input[type=submit][value='Восстановить v1']")
    page.wait_for_selector(".messagelist .success")
    assert "Версия v1 восстановлена как новая текущая версия v3." in page.locator(".messagelist").inner_text()
    screenshot(page, "admin-tutor-restored.png")
    tutor.refresh_from_db()
    assert (tutor.current_version.number, tutor.system_prompt) == (3, original)
    assert list(tutor.versions.order_by("number").values_list("created_by", flat=True)) == [
        None,
        editor.pk,
        editor.pk,
    ]


def test_content_editor_gets_403_on_feedback_and_users(page, live_server):
    log_in(page, live_server, staff_member("Content editors"))
    for path in ("/admin/feedback/feedback/", "/admin/accounts/user/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403
    page.goto(f"{live_server.url}/admin/")
    assert page.locator("a[href='/admin/feedback/feedback/']").count() == 0
    assert page.locator("a[href='/admin/tutoring/tutor/']").count() > 0


def test_ml_team_triages_feedback(page, live_server, feedback_rows, tutor):
    member = staff_member("ML team")
    Feedback.objects.filter(pk=feedback_rows[2].pk).update(processed=True)
    log_in(page, live_server, member)
    page.goto(f"{live_server.url}/admin/feedback/feedback/")
    page.click("#changelist-filter a[href*='processed__exact=0']")
    page.wait_for_url("**processed__exact=0**")
    assert page.locator("#result_list tbody tr").count() == 2
    screenshot(page, "admin-feedback-triage.png")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "mark_processed")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")
    assert "2 отзыва отмечены обработанными." in page.locator(".messagelist").inner_text()
    for feedback in feedback_rows[:2]:
        feedback.refresh_from_db()
        assert feedback.processed is True
        assert feedback.processed_by == member

    # Only `processed` is editable on the change page, which shows prompt and reply.
    page.goto(f"{live_server.url}/admin/feedback/feedback/{feedback_rows[0].id}/change/")
    editable = page.locator("form#feedback_form input:not([type=hidden]), form#feedback_form textarea")
    names = {editable.nth(i).get_attribute("name") for i in range(editable.count())}
    assert names - {"_save", "_continue", "_addanother"} == {"processed"}
    assert "Вопрос про корни №0" in page.content()
    assert "Ответ про корни №0" in page.content()

    # Tutors are read-only for the ML team.
    page.goto(f"{live_server.url}/admin/tutoring/tutor/{tutor.id}/change/")
    assert page.locator("#id_system_prompt").count() == 0
    assert page.locator("input[name=_save]").count() == 0


def test_the_triage_list_fits_1366_px_and_the_overview_links_the_queue(
    browser, live_server, feedback_rows, tutor
):
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        Feedback.objects.filter(pk=feedback_rows[0].pk).update(
            improvement_text="Хотелось бы больше примеров с дробями и пошаговых объяснений " * 3,
            reply_content="Чтобы сложить дроби с разными знаменателями, приведите их к общему знаменателю "
            * 3,
            processed=True,
        )
        Feedback.objects.filter(pk=feedback_rows[2].pk).update(
            feedback_type="quick", rating=None, quick_reaction="need_more_examples"
        )
        type(tutor).objects.filter(pk=tutor.pk).update(name="Мария Ивановна, алгебра и геометрия")
        log_in(page, live_server, staff_member("ML team"))
        page.goto(f"{live_server.url}/admin/feedback/feedback/")
        assert "AI-репетитор" in page.locator("#site-name").inner_text()
        screenshot(page, "admin-feedback-triage-1366.png")
        # Every column visible: neither the page nor the list scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.evaluate(
            "(() => { const r = document.querySelector('#changelist .results'); return r.scrollWidth <= r.clientWidth })()"
        )
        assert page.locator("#result_list th.column-processed").is_visible()
        # Issue 24, item 14: the last column was cut at the screen's edge.
        edges = page.evaluate(
            """(() => {
                const box = document.querySelector('#changelist .results').getBoundingClientRect();
                const cells = [...document.querySelectorAll('#result_list .column-processed, #result_list td.field-processed')];
                return {limit: Math.min(window.innerWidth, box.right), right: Math.max(...cells.map(c => c.getBoundingClientRect().right))};
            })()"""
        )
        assert edges["right"] <= edges["limit"], edges
        assert "Хотелось бы больше примеров" in page.locator("#result_list").inner_text()
        # Praise is not listed as the thing to improve.
        praise_only = page.locator(
            f"#result_list tr:has(a[href*='/{feedback_rows[1].id}/change/']) td.field-improvement_snippet"
        )
        assert praise_only.inner_text() in ("-", "—")

        page.click("text=Сводка по репетиторам")
        page.wait_for_selector(".feedback-overview")
        screenshot(page, "admin-feedback-overview.png")
        page.click(".feedback-overview a.unprocessed")
        page.wait_for_url("**processed__exact=0**")
        assert page.locator("#result_list tbody tr").count() == 2
    finally:
        context.close()


def test_the_training_export_downloads_consented_items_once(page, live_server, feedback_rows):
    Feedback.objects.filter(pk=feedback_rows[1].pk).update(allow_training=False)
    log_in(page, live_server, staff_member("ML team"))
    page.goto(f"{live_server.url}/admin/feedback/feedback/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "export_for_training")
    with page.expect_download() as download_info:
        page.click("button[name=index]")
    download = download_info.value
    assert download.suggested_filename.endswith(".jsonl")
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    records = sorted((json.loads(line) for line in lines), key=lambda r: r["feedback_id"])
    # The unconsented item stayed out although it was ticked.
    assert [r["feedback_id"] for r in records] == [feedback_rows[0].pk, feedback_rows[2].pk]
    assert records[0]["student_message"] == "Вопрос про корни №0"
    assert records[0]["reply"]["content"] == "Ответ про корни №0"
    assert records[0]["feedback"]["rating"] == 5
    assert records[0]["tutor_version"]["model_id"] == "math-v1"
    assert set(Feedback.objects.filter(processed=True).values_list("pk", flat=True)) == {
        feedback_rows[0].pk, feedback_rows[2].pk
    }  # fmt: skip


def test_the_usage_dashboard_fits_1366_px_and_its_csv_has_the_numbers(
    browser, live_server, tutor, make_tutor
):
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from usage.models import DailyStudents, TutorDailyUsage

    physics = make_tutor(name="Пётр Физик")
    today = datetime.now(UTC).date()
    for days_ago in range(30):
        day = today - timedelta(days=days_ago)
        for n, teacher in enumerate([tutor, physics]):
            TutorDailyUsage.objects.create(
                tutor=teacher, day=day, messages=40 + days_ago + 10 * n, tokens=(40 + days_ago) * 120,
                failures=days_ago % 4, latency_le_1000=30, latency_le_2000=10 + n, latency_le_5000=days_ago % 3,
                latency_ms_sum=45_000, students=1 + n,
                rating=Decimal("4.20") - Decimal(days_ago) / 100 if days_ago % 5 == 0 else None,
            )  # fmt: skip
        DailyStudents.objects.create(day=day, students=2)
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, live_server, staff_member("Content editors"))
        page.click("a[href$='/admin/usage/usagedashboard/']")
        page.wait_for_selector("figure.chart svg")
        assert page.locator("figure.chart").count() == 7  # six usage charts and the safety flags
        assert page.locator("figure.chart svg rect").count() == 3 * 30  # the three bar charts
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.locator("#top-tutors tbody tr").count() == 2
        screenshot(page, "admin-usage-dashboard.png")

        page.select_option("#usage-tutor", str(physics.pk))
        page.wait_for_url(f"**tutor={physics.pk}**")
        with page.expect_download() as download_info:
            page.click("text=Скачать CSV")
        rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text(encoding="utf-8"))))
        assert len(rows) == 30
        assert rows[-1] == {
            "day": today.isoformat(), "replies": "50", "tokens": "4800", "active_students": "2",
            "ai_core_failures": "0", "failure_rate_percent": "0.0", "latency_p50_ms": "842",
            "latency_p95_ms": "1814", "rating: Пётр Физик": "4.2",
        }  # fmt: skip
        screenshot(page, "admin-usage-dashboard-one-tutor.png")
    finally:
        context.close()


def test_content_editor_runs_an_experiment_and_promotes_the_winner(
    page, live_server, settings, tutor, make_user
):
    from tutoring.models import Experiment
    from tutoring.services import TutorContent, tutor_version_save
    from tutoring.tests.test_experiments import student_in

    settings.AI_CORE_URL = "stub"
    v1 = tutor.current_version
    v2 = tutor_version_save(tutor=tutor, content=TutorContent("Задавай наводящие вопросы.", "math-v2"))
    tutor_version_save(tutor=tutor, content=TutorContent.of(v1))  # v3 is current; v2 waits for the test
    editor = staff_member("Content editors")
    log_in(page, live_server, editor)

    # A draft with two arms: v1 and v2, half the students each.
    page.goto(f"{live_server.url}/admin/tutoring/experiment/add/")
    page.select_option("#id_tutor", str(tutor.pk))
    page.fill("#id_name", "Наводящие вопросы")
    for n, (letter, version) in enumerate((("0", v1), ("1", v2))):
        page.select_option(f"#id_arms-{n}-position", letter)
        page.select_option(f"#id_arms-{n}-version", str(version.pk))
        page.fill(f"#id_arms-{n}-weight", "50")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    experiment = Experiment.objects.get()

    # Start it from its page.
    page.click("button[formaction$='/start/']")
    page.wait_for_selector(".messagelist .success")
    assert "Запущен" in page.locator(".messagelist").inner_text()
    experiment.refresh_from_db()
    assert experiment.state == "running"

    # A student of arm B asks three times (the stub answers) and rates each reply: its interval is drawn as a bar.
    arm_b = experiment.arms.get(position=1)
    student = student_in(make_user, experiment, "B")
    chat = Chat.objects.create(user=student, tutor=tutor)
    client = bearer_client(student)
    for rating in (3, 4, 5):
        sent = client.post(
            f"/api/v1/chats/{chat.pk}/messages/", {"content": "Что такое дробь?"}, format="json"
        )
        reply = sent.json()["assistant_message"]["id"]
        rated = {"message": reply, "feedback_type": "detailed", "rating": rating}
        assert client.post("/api/v1/feedback/", rated, format="json").status_code == 201
    page.reload()
    rows = page.locator(".experiment-arms tbody tr")
    assert rows.count() == 2
    assert "4.00" in rows.nth(1).inner_text() or "4,00" in rows.nth(1).inner_text()
    bar = rows.nth(1).locator(".ci-range")
    assert bar.count() == 1 and bar.bounding_box()["width"] > 0
    assert rows.nth(0).locator(".ci-range").count() == 0  # no ratings, no interval
    assert "Запущен" in page.locator(".inline-group").last.inner_text()  # the state change, with who
    screenshot(page, "admin-experiment-running.png")

    # Promote arm B: a new current version with its content, the experiment stopped.
    page.click(f"button[formaction$='/promote/{arm_b.pk}/']")
    page.wait_for_selector(".messagelist .success")
    tutor.refresh_from_db()
    experiment.refresh_from_db()
    assert (tutor.current_version.number, tutor.system_prompt) == (4, v2.system_prompt)
    assert experiment.state == "stopped"
    assert page.locator("button[formaction$='/start/']").count() == 0
    screenshot(page, "admin-experiment-promoted.png")
