"""Issue 26, item 13: `seed_demo --staff` gives a newcomer staff to log in
as and screens that are not empty (development only)."""

import io
import re

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.roles import CONTENT_EDITORS, ML_TEAM
from feedback.models import Feedback
from usage.models import TutorDailyUsage, UserDailyUsage

pytestmark = pytest.mark.django_db


def seed(settings) -> dict[str, str]:
    settings.DEBUG = True
    out = io.StringIO()
    call_command("seed_demo", "--staff", stdout=out)
    return dict(re.findall(r"^[^:\n]+: (\S+@demo\.local) / (\S+)$", out.getvalue(), re.MULTILINE))


def test_staff_can_log_in_with_the_printed_passwords_and_see_activity(settings, client):
    passwords = seed(settings)
    assert set(passwords) == {"admin@demo.local", "editor@demo.local", "ml@demo.local"}
    admin, editor, ml = (User.objects.get(email=email) for email in sorted(passwords))
    assert (
        admin.is_superuser and editor.groups.get().name == CONTENT_EDITORS and ml.groups.get().name == ML_TEAM
    )
    assert client.login(username="ml@demo.local", password=passwords["ml@demo.local"])
    triage = client.get("/admin/feedback/feedback/?processed__exact=0")
    assert triage.status_code == 200 and "demo_student" not in triage.content.decode()  # pseudonymous keys
    assert (
        Feedback.objects.filter(allow_training=True).exists()
        and Feedback.objects.exclude(rating=None).exists()
    )
    assert TutorDailyUsage.objects.filter(messages__gt=0).count() >= 3
    assert UserDailyUsage.objects.filter(messages__gt=0).exists()
    assert client.get("/admin/usage/usagedashboard/").status_code == 200


def test_running_it_again_resets_passwords_and_adds_no_students(settings):
    first = seed(settings)
    replies = Feedback.objects.count(), User.objects.count()
    second = seed(settings)
    assert first.keys() == second.keys() and all(first[email] != second[email] for email in first)
    assert (Feedback.objects.count(), User.objects.count()) == replies


def test_it_refuses_to_print_passwords_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development"):
        call_command("seed_demo", "--staff", stdout=io.StringIO())
    assert not User.objects.filter(email__endswith="demo.local").exists()
