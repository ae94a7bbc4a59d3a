"""Writes the consented feedback not yet exported as JSON lines, and marks it processed.

For the ML team's cron, e.g. nightly:
    python manage.py export_training_data --output /data/training/$(date +%F).jsonl
"""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from feedback.training import training_export_claim, training_lines

from ._output import write_lines


class Command(BaseCommand):
    help = "Export consented, unprocessed feedback for training (JSON lines) and mark it processed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", help="File to write (default: standard output).")
        parser.add_argument("--batch", help="Write an earlier export's batch again (its id) instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            try:
                batch = uuid.UUID(options["batch"])
            except ValueError:
                raise CommandError("--batch takes the id of an earlier export.") from None
        else:
            claimed = training_export_claim(by=None)
            batch = claimed.id
            self.stderr.write(f"Export {batch}: {claimed.count} item(s) marked processed.")
        write_lines(training_lines(batch), options["output"])
