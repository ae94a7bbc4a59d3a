"""The export for training: consented feedback only, each item exported once.

An export first *claims* its items in one UPDATE: consented, not yet
processed (and, from the admin, among the selected ones) become processed
and get the export's batch id. Two exports running at once therefore never
take the same item: the second UPDATE waits for the first's row locks and
then skips what it marked. The lines are then written from the batch with a
server-side cursor, so memory does not grow with its size; a batch whose
download failed can be written again (`export_training_data --batch`).

Each line is one JSON object named as the ML team reads it: the student's
message is `student_message`, the turns before it (as AI-Core got them)
are `conversation`, and the tutor version in force says which system prompt
produced the reply.
"""

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from safety.selectors import flagged_exchanges
from tutor_platform.pseudonyms import student_key

from .models import Feedback

CHUNK = 500


@dataclass(frozen=True)
class ExportBatch:
    id: uuid.UUID
    count: int


def training_export_claim(*, by: User | None, ids: Iterable[int] | None = None) -> ExportBatch:
    """Marks the consented, unprocessed items (all, or those among `ids`) as
    processed by this export, atomically, and returns the batch."""
    batch = uuid.uuid4()
    # A flagged exchange waits (unprocessed) until its flag is dismissed.
    items = Feedback.objects.filter(allow_training=True, processed=False).exclude(
        prompt_message_id__in=flagged_exchanges()
    )
    if ids is not None:
        items = items.filter(id__in=list(ids))
    with transaction.atomic():
        count = items.update(processed=True, processed_at=timezone.now(), processed_by=by, export_batch=batch)
    return ExportBatch(id=batch, count=count)


def training_lines(batch: uuid.UUID) -> Iterator[str]:
    """The batch as JSON lines, oldest item first."""
    items = (
        Feedback.objects.filter(export_batch=batch, allow_training=True)
        .select_related("tutor__course", "tutor_version", "experiment_arm")
        .order_by("id")
    )
    for feedback in items.iterator(chunk_size=CHUNK):
        yield json.dumps(training_record(feedback), ensure_ascii=False) + "\n"


def training_record(feedback: Feedback) -> dict[str, Any]:
    version = feedback.tutor_version
    tutor = feedback.tutor
    return {
        "feedback_id": feedback.pk,
        "batch": str(feedback.export_batch),
        "student": student_key(feedback.user_id),
        "course": {"id": tutor.course_id, "name": tutor.course.name},
        "tutor": {"id": tutor.pk, "name": tutor.name},
        "tutor_version": None
        if version is None
        else {
            "number": version.number,
            "system_prompt": version.system_prompt,
            "model_id": version.model_id,
            "knowledge_base_id": version.knowledge_base_id,
        },
        "experiment_arm": feedback.experiment_arm.label if feedback.experiment_arm else None,
        "conversation": feedback.history,
        "student_message": feedback.prompt_content,
        "student_attachments": feedback.prompt_attachments,
        "reply": {"content": feedback.reply_content, "metadata": feedback.reply_metadata},
        "learner": feedback.reply_metadata.get("learner"),  # what AI-Core was told with it (issue 29)
        "feedback": {
            "type": feedback.feedback_type,
            "rating": feedback.rating,
            "quick_reaction": feedback.quick_reaction or None,
            "positive_text": feedback.positive_text,
            "improvement_text": feedback.improvement_text,
            "created_at": feedback.created_at.isoformat(),
        },
    }
