"""The shipped starter lists and the contract's default policies
(safety/data/starter.json): loaded by a data migration, and by tests whose
database was flushed."""

import json
from pathlib import Path
from typing import Any

STARTER = Path(__file__).resolve().parent / "data" / "starter.json"
NOTE = "starter list"


def load(policy_model: Any, term_model: Any) -> None:
    """Creates what is missing; staff's changes to what exists are kept."""
    data = json.loads(STARTER.read_text(encoding="utf-8"))
    for policy in data["policies"]:
        policy_model.objects.get_or_create(category=policy["category"], defaults=policy)
    term_model.objects.bulk_create(
        [term_model(**term, note=NOTE) for term in data["terms"]], ignore_conflicts=True
    )
