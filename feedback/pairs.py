"""Preference pairs for the ML team: two answers to one prompt, one preferred.

Two sources, both honouring consent:

- `rating`: two variants of one reply whose detailed feedback rates them
  differently, both given with `allow_training` (from the feedback snapshots,
  so a cleared chat loses nothing);
- `selection`: the student kept an earlier variant over the newest one
  (`select/`), and their profile's standing consent (`allow_training`) is on.

A page of pairs costs a fixed number of queries: the count, the page of
(source, chosen, rejected) ids, the feedback rows, the messages, and the
conversations before the selected replies' prompts.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection

from accounts.models import User
from chats.models import Chat, Message
from safety.selectors import flagged_exchanges
from tutor_platform.pseudonyms import student_key
from tutoring.models import ExperimentArm, TutorVersion

from .models import Feedback

RATING, SELECTION = "rating", "selection"


@dataclass(frozen=True)
class PairFilter:
    tutor_id: int | None = None
    tutor_version: int | None = None  # the chosen answer's version number
    created_since: datetime | None = None  # the chosen answer's time


def _pair_sql(filters: PairFilter) -> tuple[str, list[Any]]:
    """(source, chosen id, rejected id) of every pair, in a stable order.
    Rating pairs name feedback rows, selection pairs messages."""
    feedback, message = Feedback._meta.db_table, Message._meta.db_table
    chat, user, version = Chat._meta.db_table, User._meta.db_table, TutorVersion._meta.db_table
    rating_where, rating_params = ["c.feedback_type = %s", "r.feedback_type = %s", "c.allow_training = %s",
                                   "r.allow_training = %s"], ["detailed", "detailed", True, True]  # fmt: skip
    selection_where, selection_params = (
        ["m.role = %s", "m.is_current = %s", "u.allow_training = %s"],
        [
            "assistant",
            True,
            True,
        ],
    )
    if filters.tutor_id is not None:
        rating_where.append("c.tutor_id = %s")
        rating_params.append(filters.tutor_id)
        selection_where.append("ch.tutor_id = %s")
        selection_params.append(filters.tutor_id)
    if filters.tutor_version is not None:
        rating_where.append("cv.number = %s")
        rating_params.append(filters.tutor_version)
        selection_where.append("mv.number = %s")
        selection_params.append(filters.tutor_version)
    if filters.created_since is not None:
        rating_where.append("c.created_at >= %s")
        rating_params.append(filters.created_since)
        selection_where.append("m.created_at >= %s")
        selection_params.append(filters.created_since)
    # Never an exchange a safety flag holds back (until the flag is dismissed).
    held_back, held_back_params = flagged_exchanges().query.sql_with_params()
    rating_where.append(f"c.prompt_message_id NOT IN ({held_back})")
    rating_params.extend(held_back_params)
    selection_where.append(f"m.reply_to_id NOT IN ({held_back})")
    selection_params.extend(held_back_params)
    newest = f"(SELECT MAX(v.id) FROM {message} v WHERE v.reply_to_id = m.reply_to_id)"  # noqa: S608
    sql = f"""
        SELECT 'rating' AS source, c.id AS chosen, r.id AS rejected
        FROM {feedback} c
        JOIN {feedback} r ON r.prompt_message_id = c.prompt_message_id AND r.rating < c.rating
        LEFT JOIN {version} cv ON cv.id = c.tutor_version_id
        WHERE {" AND ".join(rating_where)}
        UNION ALL
        SELECT 'selection' AS source, m.id AS chosen, {newest} AS rejected
        FROM {message} m
        JOIN {chat} ch ON ch.id = m.chat_id
        JOIN {user} u ON u.id = ch.user_id
        LEFT JOIN {version} mv ON mv.id = m.tutor_version_id
        WHERE {" AND ".join(selection_where)} AND m.id < {newest}
    """  # noqa: S608 (only table names and fixed clauses are interpolated; values are parameters)
    return sql, [*rating_params, *selection_params]


def pair_count(filters: PairFilter) -> int:
    sql, params = _pair_sql(filters)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM ({sql}) pairs", params)  # noqa: S608
        return cursor.fetchone()[0]


def pair_ids(filters: PairFilter, *, offset: int, limit: int) -> list[tuple[str, int, int]]:
    sql, params = _pair_sql(filters)
    with connection.cursor() as cursor:
        ordered = f"SELECT * FROM ({sql}) pairs ORDER BY source, chosen, rejected LIMIT %s OFFSET %s"  # noqa: S608
        cursor.execute(ordered, [*params, limit, offset])
        return [(source, chosen, rejected) for source, chosen, rejected in cursor.fetchall()]


def _histories(prompt_ids: set[int]) -> dict[int, list[dict[str, str]]]:
    """The conversation before each prompt as AI-Core got it: its chat's last
    AI_HISTORY_MESSAGES current messages before it, oldest first. One query."""
    limit = settings.AI_HISTORY_MESSAGES
    if not prompt_ids or limit <= 0:
        return {}
    message = Message._meta.db_table
    placeholders = ", ".join(["%s"] * len(prompt_ids))
    sql = f"""
        SELECT prompt_id, role, content FROM (
            SELECT p.id AS prompt_id, m.id AS mid, m.role, m.content,
                   ROW_NUMBER() OVER (PARTITION BY p.id ORDER BY m.id DESC) AS rn
            FROM {message} p
            JOIN {message} m ON m.chat_id = p.chat_id AND m.id < p.id AND m.is_current = %s
            WHERE p.id IN ({placeholders})
        ) earlier WHERE rn <= %s ORDER BY prompt_id, mid
    """  # noqa: S608 (table names and placeholders only)
    histories: dict[int, list[dict[str, str]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, *prompt_ids, limit])
        for prompt_id, role, content in cursor.fetchall():
            histories[prompt_id].append({"role": role, "content": content})
    return histories


def _side(
    content: str,
    version: TutorVersion | None,
    metadata: dict,
    arm: ExperimentArm | None,
    rating: int | None = None,
) -> dict:
    return {
        "content": content,
        "tutor_version": version.number if version else None,
        "experiment_arm": arm.label if arm else None,
        "metadata": metadata,
        "rating": rating,
    }


def pair_items(ids: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """The pairs' JSON, in the order of `ids`: three queries for any page."""
    feedback_ids = {pk for source, *pks in ids if source == RATING for pk in pks}
    message_ids = {pk for source, *pks in ids if source == SELECTION for pk in pks}
    feedback = Feedback.objects.select_related("tutor", "tutor_version", "experiment_arm").in_bulk(
        feedback_ids
    )
    messages = (
        Message.objects.select_related("chat__tutor", "tutor_version", "experiment_arm", "reply_to").in_bulk(
            message_ids
        )
        if message_ids
        else {}
    )
    histories = _histories({messages[pk].reply_to_id for pk in message_ids if pk in messages})
    items = []
    for source, chosen_id, rejected_id in ids:
        rows = feedback if source == RATING else messages
        if chosen_id not in rows or rejected_id not in rows:
            continue  # deleted since the page's ids were read
        if source == RATING:
            chosen, rejected = feedback[chosen_id], feedback[rejected_id]
            items.append(
                {
                    "id": f"{RATING}:{chosen_id}:{rejected_id}",
                    "source": RATING,
                    "student": student_key(chosen.user_id),
                    "tutor": {"id": chosen.tutor_id, "name": chosen.tutor.name},
                    "prompt": [*chosen.history, {"role": "user", "content": chosen.prompt_content}],
                    "chosen": _side(
                        chosen.reply_content,
                        chosen.tutor_version,
                        chosen.reply_metadata,
                        chosen.experiment_arm,
                        chosen.rating,
                    ),
                    "rejected": _side(
                        rejected.reply_content,
                        rejected.tutor_version,
                        rejected.reply_metadata,
                        rejected.experiment_arm,
                        rejected.rating,
                    ),
                    "created_at": max(chosen.updated_at, rejected.updated_at),
                }
            )
        else:
            chosen, rejected = messages[chosen_id], messages[rejected_id]
            prompt = chosen.reply_to
            items.append(
                {
                    "id": f"{SELECTION}:{chosen_id}:{rejected_id}",
                    "source": SELECTION,
                    "student": student_key(chosen.chat.user_id),
                    "tutor": {"id": chosen.chat.tutor_id, "name": chosen.chat.tutor.name},
                    "prompt": [*histories.get(prompt.pk, []), {"role": "user", "content": prompt.content}],
                    "chosen": _side(
                        chosen.content, chosen.tutor_version, chosen.metadata, chosen.experiment_arm
                    ),
                    "rejected": _side(
                        rejected.content, rejected.tutor_version, rejected.metadata, rejected.experiment_arm
                    ),
                    "created_at": rejected.created_at,
                }
            )
    return items


def dpo_lines(filters: PairFilter, *, batch: int = 200) -> Iterator[str]:
    """Every pair as a JSON line in the common DPO layout (`prompt` as chat
    messages, `chosen` and `rejected` as assistant messages), page by page,
    so memory does not grow with the number of pairs."""
    offset = 0
    while True:
        ids = pair_ids(filters, offset=offset, limit=batch)
        if not ids:
            return
        for item in pair_items(ids):
            yield (
                json.dumps(
                    {
                        "prompt": item["prompt"],
                        "chosen": [{"role": "assistant", "content": item["chosen"]["content"]}],
                        "rejected": [{"role": "assistant", "content": item["rejected"]["content"]}],
                        "id": item["id"],
                        "source": item["source"],
                        "tutor_id": item["tutor"]["id"],
                        "chosen_tutor_version": item["chosen"]["tutor_version"],
                        "rejected_tutor_version": item["rejected"]["tutor_version"],
                        "chosen_experiment_arm": item["chosen"]["experiment_arm"],
                        "rejected_experiment_arm": item["rejected"]["experiment_arm"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
        offset += batch
