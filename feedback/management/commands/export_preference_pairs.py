"""Writes every consented preference pair as JSON lines in the DPO layout.

For the ML team's cron, e.g.:
    python manage.py export_preference_pairs --output /data/pairs/$(date +%F).jsonl
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from feedback.pairs import PairFilter, dpo_lines

from ._output import write_lines


class Command(BaseCommand):
    help = "Export preference pairs (chosen/rejected answers to one prompt) as DPO JSON lines."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", help="File to write (default: standard output).")
        parser.add_argument("--tutor", type=int, help="Only this tutor's pairs.")
        parser.add_argument(
            "--tutor-version", type=int, help="Only pairs whose chosen answer has this version."
        )
        parser.add_argument("--since", help="Only pairs whose chosen answer is this recent (ISO 8601).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            since = parse_datetime(options["since"])
            if since is None or since.tzinfo is None:
                raise CommandError("--since takes an ISO 8601 time with its zone, e.g. 2026-11-01T00:00:00Z.")
        filters = PairFilter(
            tutor_id=options["tutor"], tutor_version=options["tutor_version"], created_since=since
        )
        write_lines(dpo_lines(filters), options["output"])
