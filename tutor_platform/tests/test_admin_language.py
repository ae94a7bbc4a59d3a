"""Issue 26, item 9: the staff's admin in one language. Every admin page a
superuser, a content editor, the ML team and a safety reviewer can open is
walked (following the links each of them sees), and no English word the
project put there may remain in Russian; English is the switchable
alternative and then reads English."""

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from accounts.roles import CONTENT_EDITORS, ML_TEAM, SAFETY_REVIEWERS
from conftest import bearer_client, image_bytes
from safety.models import Flag
from tutoring import experiments, services
from tutoring.models import Experiment, ExperimentArm, ExperimentEvent
from tutoring.services import TutorContent

# Names that are the same in both languages: products, protocols, formats,
# and the data this test stores (e-mail addresses are removed before).
NOT_ENGLISH = {
    "AI", "AI-Core", "Core", "API", "ML", "JSON", "JSONL", "JWT", "URL", "ID", "UTC", "SSE", "HTTP", "HTTPS",
    "OpenAI", "Swagger", "PNG", "JPEG", "GIF", "WebP", "PDF", "S3", "Redis", "PostgreSQL", "English",
    "Idempotency-Key", "CSV", "UUID", "EXIF", "SHA-256", "TutorDailyStudent",
    "Control", "Command", "Mac",  # keys, in Django's own Russian help for multiple selects
    "A", "B", "C", "D",  # an experiment's arms
}  # fmt: skip
WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’-]*[A-Za-z0-9]|[A-Za-z]")
# Not words: e-mail addresses, URL paths, masked values (the password
# hash's summary), version numbers (v3, in Russian too), and the names
# Django gives the tables behind many-to-many fields ("Group-permission
# relationship", "Group_permissions object (5)"), built in English.
NOT_WORDS = re.compile(
    r"[\w.+-]+@[\w-]+(\.[\w-]+)+|/[\w/.-]+/|\S*\*{3,}\S*|\bv\d+\b"
    r"|\b[A-Z]\w+-\w+ relationships?\b|\b\w+_\w+ object \(\d+\)"
)
SKIP = ("/admin/logout/", "/admin/jsi18n/", "/admin/r/")


# Django's own, not the project's: its icons' alt text ("Search", "True"),
# and the permission picker, which lists permissions by their stored
# English names under each app's name (simplejwt's "Token Blacklist" too).
DJANGOS = ("/static/admin/img/",)
PERMISSION_PICKERS = ("user_permissions", "permissions")


class VisibleText(HTMLParser):
    """What a person reads on the page: text outside scripts and styles, and
    the attributes a browser shows (titles, placeholders, button labels)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self._hidden = 0
        self._in_picker = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "select" and attributes.get("name") in PERMISSION_PICKERS:
            self._in_picker = True
            self._hidden += 1
        if tag in ("script", "style", "template"):
            self._hidden += 1
        if tag == "img" and (attributes.get("src") or "").startswith(DJANGOS):
            return
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        for name in ("title", "placeholder", "aria-label", "alt"):
            if attributes.get(name):
                self.text.append(attributes[name])
        if tag == "input" and attributes.get("type") in ("submit", "button") and attributes.get("value"):
            self.text.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template") or (tag == "select" and self._in_picker):
            self._hidden -= 1
            self._in_picker = self._in_picker and tag != "select"

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def english_words(text: str, data: set[str]) -> set[str]:
    words = set(WORD.findall(NOT_WORDS.sub(" ", text)))
    return {word for word in words if word not in NOT_ENGLISH and word not in data}


def stored_words() -> set[str]:
    """Words of what is stored, not of the admin: free text and JSON of every
    row (the English safety terms and safe texts, AI-Core's metadata, group
    and permission names, password hashes). Fields with choices are not data:
    their labels are the admin's."""
    words: set[str] = set()
    for model in apps.get_models():
        columns = [
            field.attname
            for field in model._meta.concrete_fields
            if isinstance(field, (models.CharField, models.TextField, models.JSONField)) and not field.choices
        ]
        for row in model._default_manager.values_list(*columns):
            words |= set(WORD.findall(NOT_WORDS.sub(" ", json.dumps(row, ensure_ascii=False, default=str))))
    return words


def walk(
    client, data: set[str], start: str = "/admin/", limit: int = 400
) -> tuple[dict[str, set[str]], set[str]]:
    """Every admin page reachable from the index by following links (without
    query strings, at most two objects of a kind): the English words of each,
    and the pages opened."""
    seen, queue, found = set(), [start], {}
    per_kind: dict[str, int] = {}
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen or path.startswith(SKIP):
            continue
        kind = re.sub(r"/\d+/", "/<id>/", path)
        if kind != path and (per_kind.get(kind, 0) >= 2):
            continue
        seen.add(path)
        per_kind[kind] = per_kind.get(kind, 0) + 1
        response = client.get(path)
        assert response.status_code in (200, 302, 403), (path, response.status_code)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        page = VisibleText()
        page.feed(response.content.decode())
        if words := english_words(" ".join(page.text), data):
            found[path] = words
        for link in page.links:
            target = urlsplit(link)
            if not target.netloc and target.path.startswith("/admin/") and target.path not in seen:
                queue.append(target.path)
    return found, seen


@pytest.fixture
def world(user, make_tutor, admin_user, make_attachment):
    """One of each thing the admin shows: a tutor with versions, a chat with
    replies, a safe reply and its flag, feedback, progress, usage, an upload."""
    tutor = make_tutor(name="Алгебра", system_prompt="Ты репетитор по алгебре.")
    tutor.versions.update(model_id="tutor-model", knowledge_base_id="kb-algebra")
    student = bearer_client(user)
    chat = student.post("/api/v1/chats/", {"tutor": tutor.id}, format="json").json()["id"]
    upload = make_attachment(user, image_bytes())
    sent = student.post(
        f"/api/v1/chats/{chat}/messages/",
        {"content": "Как решить уравнение?", "attachments": [{"id": upload.id}]},
        format="json",
    ).json()
    student.post(f"/api/v1/chats/{chat}/regenerate/")
    student.post(f"/api/v1/chats/{chat}/messages/", {"content": "Я больше не хочу жить"}, format="json")
    student.post(
        "/api/v1/feedback/",
        {"message": sent["assistant_message"]["id"], "feedback_type": "detailed", "rating": 4,
         "positive_text": "Понятно", "allow_training": True},
        format="json",
    )  # fmt: skip
    student.post(
        "/api/v1/feedback/",
        {"message": sent["assistant_message"]["id"], "feedback_type": "quick", "quick_reaction": "too_hard"},
        format="json",
    )
    student.post(f"/api/v1/progress/{tutor.id}/add/", {"minutes": 25}, format="json")
    services.tutor_version_save(
        tutor=tutor,
        content=TutorContent("Ты репетитор по алгебре. Объясняй по шагам.", "tutor-model", "kb-algebra"),
        note="Пошаговые объяснения",
        by=admin_user,
    )
    experiment = Experiment.objects.create(
        tutor=tutor, name="Пошаговые объяснения", hypothesis="Меньше «сложно»"
    )
    for position, version in enumerate(tutor.versions.order_by("number")):
        ExperimentArm.objects.create(experiment=experiment, position=position, version=version, weight=50)
    experiments.experiment_start(experiment=experiment, by=admin_user)
    halt = {"arm": "B", "figure": "bad_share", "value": 0.4, "first_arm": 0.1, "margin": 0.15}
    ExperimentArm.objects.filter(position=1).update(halted_at=timezone.now(), halt_figures=halt)
    ExperimentEvent.objects.create(experiment=experiment, action="arm_halted", details=halt)
    return tutor


# Pages each role must reach (the walk follows links, so a page it never
# reached would pass unchecked); {t} is the tutor, {f} a flag.
MUST_REACH = {
    "superuser": [
        "/admin/", "/admin/accounts/user/add/", "/admin/tutoring/tutor/{t}/change/",
        "/admin/tutoring/tutor/{t}/versions/compare/", "/admin/tutoring/tutor/{t}/versions/1/restore/",
        "/admin/feedback/feedback/overview/", "/admin/usage/usagedashboard/", "/admin/safety/flag/{f}/change/",
        "/admin/tutoring/experiment/{e}/change/", "/admin/tutoring/experiment/add/",
    ],
    CONTENT_EDITORS: [
        "/admin/tutoring/tutor/{t}/change/", "/admin/tutoring/tutor/add/", "/admin/tutoring/course/add/",
        "/admin/tutoring/tutor/{t}/versions/compare/", "/admin/tutoring/tutor/{t}/versions/1/restore/",
        "/admin/usage/usagedashboard/", "/admin/tutoring/experiment/{e}/change/", "/admin/tutoring/experiment/add/",
    ],
    ML_TEAM: [
        "/admin/feedback/feedback/", "/admin/feedback/feedback/overview/", "/admin/tutoring/tutor/{t}/change/",
        "/admin/tutoring/tutor/{t}/versions/compare/", "/admin/usage/usagedashboard/", "/admin/chats/message/",
        "/admin/tutoring/experiment/{e}/change/",
    ],
    SAFETY_REVIEWERS: [
        "/admin/safety/flag/{f}/change/", "/admin/safety/term/add/", "/admin/safety/policy/", "/admin/chats/chat/",
    ],
}  # fmt: skip


@pytest.mark.parametrize("role", ["superuser", CONTENT_EDITORS, ML_TEAM, SAFETY_REVIEWERS])
def test_every_admin_page_a_role_opens_is_in_russian(role, world, client, admin_user, make_staff):
    client.force_login(admin_user if role == "superuser" else make_staff(role))
    found, seen = walk(client, data=stored_words())
    flag = Flag.objects.get()
    experiment = Experiment.objects.get()
    assert {page.format(t=world.id, f=flag.id, e=experiment.id) for page in MUST_REACH[role]} <= seen
    assert not any(page.startswith("/admin/token_blacklist/") for page in seen)  # hidden from everyone
    assert found == {}, "\n".join(f"{path}: {' '.join(sorted(words))}" for path, words in found.items())


def test_english_is_the_switchable_alternative(world, client, admin_user):
    client.force_login(admin_user)
    russian = client.get(f"/admin/tutoring/tutor/{world.id}/change/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    english = client.get(f"/admin/tutoring/tutor/{world.id}/change/").content.decode()
    assert "Системный промпт" in russian and "System prompt" not in russian
    assert "System prompt" in english and "Системный промпт" not in english
    assert Group.objects.filter(name=CONTENT_EDITORS).exists()
