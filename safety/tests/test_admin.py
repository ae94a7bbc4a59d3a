"""The safety screens in the admin: who may see them, the queue's order,
the review, the term lists' validation."""

import pytest

from accounts.roles import CONTENT_EDITORS, ML_TEAM, SAFETY_REVIEWERS
from safety.models import Flag, Term

pytestmark = pytest.mark.django_db

QUEUE = "/admin/safety/flag/"
TERMS = "/admin/safety/term/"


def make_flag(text: str, category: str, severity: int, **fields) -> Flag:
    return Flag.objects.create(
        stage="input", categories=[category], category=category, severity=severity, action="flag",
        providers="rules", text=text, **fields,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("group", "status"), [(SAFETY_REVIEWERS, 200), (CONTENT_EDITORS, 403), (ML_TEAM, 403)]
)
def test_only_safety_reviewers_and_superusers_see_the_queue(staff_in, client, admin_user, group, status):
    staff_in(group)
    assert client.get(QUEUE).status_code == status
    client.force_login(admin_user)
    assert client.get(QUEUE).status_code == 200


def test_the_queue_shows_pending_flags_most_severe_then_oldest_first(staff_in, client):
    mild = make_flag("блин, профанити", "profanity", 10)
    old = make_flag("старое: суицид", "self_harm", 100)
    new = make_flag("новое: суицид", "self_harm", 100)
    make_flag("разобрано", "sexual", 90, review=Flag.Review.DISMISSED)
    staff_in(SAFETY_REVIEWERS)

    page = client.get(QUEUE).content.decode()

    order = [page.index(text) for text in (old.text, new.text, mild.text)]
    assert order == sorted(order)
    assert "разобрано" not in page
    assert "разобрано" in client.get(QUEUE, {"review": "all"}).content.decode()


def test_a_review_records_who_and_when_and_only_the_review_is_editable(staff_in, client):
    flag = make_flag("я его застрелю", "violence", 60)
    reviewer = staff_in(SAFETY_REVIEWERS)

    response = client.post(
        f"{QUEUE}{flag.pk}/change/",
        {"review": "confirmed", "review_note": "Поговорили с классным руководителем.", "text": "подмена"},
    )

    assert response.status_code == 302
    flag.refresh_from_db()
    assert (flag.review, flag.review_note) == ("confirmed", "Поговорили с классным руководителем.")
    assert flag.reviewed_by == reviewer and flag.reviewed_at is not None
    assert flag.text == "я его застрелю"


def test_flags_are_never_deleted_or_added_by_hand(staff_in, client, admin_user):
    flag = make_flag("текст", "violence", 60)
    client.force_login(admin_user)
    assert client.post(f"{QUEUE}{flag.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{QUEUE}add/").status_code == 403
    response = client.post(QUEUE, {"action": "delete_selected", "_selected_action": [flag.pk], "post": "yes"})
    assert Flag.objects.filter(pk=flag.pk).exists() and response.status_code in (200, 302)


def test_the_bulk_actions_review_the_selected_flags(staff_in, client):
    first, second = make_flag("a", "violence", 60), make_flag("b", "violence", 60)
    reviewer = staff_in(SAFETY_REVIEWERS)
    client.post(QUEUE, {"action": "dismiss", "_selected_action": [first.pk, second.pk]})
    assert list(Flag.objects.values_list("review", "reviewed_by")) == [("dismissed", reviewer.pk)] * 2


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("pattern", "(незакрытая", "Некорректное регулярное выражение"),
        ("pattern", "x*", "совпадает с пустым текстом"),
        ("stem", "я", "не меньше двух букв"),
    ],
)
def test_a_bad_term_is_refused_with_a_message(staff_in, client, kind, text, message):
    staff_in(SAFETY_REVIEWERS)
    before = Term.objects.count()
    response = client.post(
        f"{TERMS}add/", {"category": "violence", "kind": kind, "text": text, "is_active": "on"}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Term.objects.count() == before


def test_a_term_added_in_the_admin_is_matched_at_once(staff_in, client, auth_client, chat):
    staff_in(SAFETY_REVIEWERS)
    response = client.post(
        f"{TERMS}add/", {"category": "sexual", "kind": "stem", "text": "запретн", "is_active": "on"}
    )
    assert response.status_code == 302
    sent = auth_client.post(
        f"/api/v1/chats/{chat.id}/messages/", {"content": "Запретное слово"}, format="json"
    )
    assert sent.status_code == 400 and sent.json()["categories"] == ["sexual"]
