"""Writes the consented feedback not yet exported as JSON lines, and marks it processed.

For the ML team's cron (deploy/crontab), nightly, on every app server:
    python manage.py export_training_data --to-storage training/feedback-$(date +%F).jsonl
writes to Django's storage (S3-compatible in production), so the export is
wherever the ML team looks, whichever server ran it; only one server runs
it at a time (tutor_platform.jobs), and a night with nothing to export
stores no file. `--output` writes a local file instead, `--batch` an
earlier export again.
"""

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from feedback.training import training_export_claim, training_lines
from tutor_platform.jobs import only_one

from ._output import store_lines, write_lines


class Command(BaseCommand):
    help = "Export consented, unprocessed feedback for training (JSON lines) and mark it processed."

    def add_arguments(self, parser) -> None:
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--output", help="File to write (default: standard output).")
        where.add_argument("--to-storage", help="Name to store it under in Django's storage.")
        parser.add_argument("--batch", help="Write an earlier export's batch again (its id) instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batch"]:
            try:
                batch = uuid.UUID(options["batch"])
            except ValueError:
                raise CommandError("--batch takes the id of an earlier export.") from None
            self._write(batch, options)
            return
        with only_one("export_training_data") as mine:
            if not mine:
                self.stderr.write("Another app server is exporting now: nothing done here.")
                return
            claimed = training_export_claim(by=None)
            self.stderr.write(f"Export {claimed.id}: {claimed.count} item(s) marked processed.")
            if claimed.count or not options["to_storage"]:
                self._write(claimed.id, options)

    def _write(self, batch: uuid.UUID, options: dict[str, Any]) -> None:
        if options["to_storage"]:
            stored = store_lines(training_lines(batch), options["to_storage"])
            self.stderr.write(f"Stored as {stored}.")
        else:
            write_lines(training_lines(batch), options["output"])
