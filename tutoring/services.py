"""Writes for tutors: creation and versions.

A tutor's content (system prompt, model, knowledge base) lives only in its
versions, so it changes only through `tutor_version_save`, which adds the
next version; earlier versions are never rewritten.
"""

import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User

from .catalogue import catalogue_changed
from .models import Course, TeachingMode, Tutor, TutorVersion

_TRAILING_SPACE = re.compile(r"[ \t\f\v]+$", re.MULTILINE)


def normalize_prompt(text: str) -> str:
    """The prompt as the editor meant it: `\\n` line endings (browsers send
    `\\r\\n`), no trailing whitespace on any line or at the end."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_SPACE.sub("", text).rstrip()


@dataclass(frozen=True)
class TutorContent:
    """What a version holds, the part AI-Core is asked with."""

    system_prompt: str
    model_id: str
    knowledge_base_id: str = ""
    teaching_mode: str = TeachingMode.SOCRATIC

    def normalized(self) -> "TutorContent":
        return TutorContent(
            system_prompt=normalize_prompt(self.system_prompt),
            model_id=self.model_id.strip(),
            knowledge_base_id=self.knowledge_base_id.strip(),
            teaching_mode=self.teaching_mode or TeachingMode.SOCRATIC,  # a form that did not post it
        )

    @classmethod
    def of(cls, version: TutorVersion | None) -> "TutorContent | None":
        if version is None:
            return None
        return cls(version.system_prompt, version.model_id, version.knowledge_base_id, version.teaching_mode)


def tutor_version_save(
    *, tutor: Tutor, content: TutorContent, note: str = "", by: User | None = None
) -> TutorVersion | None:
    """Makes `content` the tutor's current version, as the next number.

    Returns the new version, or None when the content equals the current
    one (saving without a change makes no version). Under the tutor's row
    lock, so two editors saving at once get consecutive numbers.
    """
    content = content.normalized()
    with transaction.atomic():
        # Lock first, then read the current version in its own query: a join
        # in the locking query would return the version seen before the wait.
        locked = Tutor.objects.select_for_update().get(pk=tutor.pk)
        current = locked.current_version
        if TutorContent.of(current) == content:
            return None
        version = TutorVersion.objects.create(
            tutor=locked,
            number=(current.number if current else 0) + 1,
            system_prompt=content.system_prompt,
            model_id=content.model_id,
            knowledge_base_id=content.knowledge_base_id,
            teaching_mode=content.teaching_mode,
            note=note.strip(),
            created_by=by,
        )
        # Not a catalogue change: the content is shown to staff only, never from the cache.
        Tutor.objects.filter(pk=tutor.pk).update(current_version=version)
    tutor.current_version = version
    return version


def tutor_version_restore(*, tutor: Tutor, number: int, by: User | None = None) -> TutorVersion | None:
    """A new version with the content of version `number` (history is never rewritten)."""
    old = TutorVersion.objects.get(tutor=tutor, number=number)
    content = TutorContent.of(old)
    assert content is not None
    return tutor_version_save(tutor=tutor, content=content, note=f"Restored version {number}", by=by)


def tutor_create(*, tutor: Tutor, content: TutorContent, note: str = "", by: User | None = None) -> Tutor:
    """Saves a new tutor (an unsaved instance, as the admin's form builds it)
    with its version 1, in one transaction."""
    with transaction.atomic():
        tutor.save()
        tutor_version_save(tutor=tutor, content=content, note=note, by=by)
        catalogue_changed()
    return tutor


@dataclass(frozen=True)
class ActivationResult:
    changed: int
    # Activation: tutors left inactive because they have no system prompt.
    without_prompt: list[str]
    # Deactivation: students who have chats with the deactivated tutors.
    students_with_chats: int


def tutors_set_active(*, tutor_ids: list[int], active: bool) -> ActivationResult:
    """Publishes or hides tutors. A tutor without a system prompt is never
    made active (students would get an assistant with no instructions)."""
    tutors = Tutor.objects.filter(pk__in=tutor_ids)
    without_prompt: list[str] = []
    with transaction.atomic():
        if active:
            empty = tutors.filter(Q(current_version__isnull=True) | Q(current_version__system_prompt=""))
            without_prompt = sorted(empty.values_list("name", flat=True))
            tutors = tutors.exclude(pk__in=empty.values("pk"))
        changed = tutors.exclude(is_active=active).update(is_active=active, updated_at=timezone.now())
        catalogue_changed()
    students = 0
    if not active:
        # Through the relation, not chats' model: chats depends on tutoring.
        students = (
            Tutor.objects.filter(pk__in=tutor_ids, chats__isnull=False)
            .values("chats__user_id")
            .distinct()
            .count()
        )
    return ActivationResult(changed=changed, without_prompt=without_prompt, students_with_chats=students)


def courses_set_active(*, course_ids: list[int], active: bool) -> int:
    with transaction.atomic():
        changed = (
            Course.objects.filter(pk__in=course_ids)
            .exclude(is_active=active)
            .update(is_active=active, updated_at=timezone.now())
        )
        catalogue_changed()
    return changed
