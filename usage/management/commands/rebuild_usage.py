from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.services import rebuild, today


class Command(BaseCommand):
    help = (
        "Recounts the usage rollups (replies, tokens, latency, students per UTC day) from the messages "
        "for a range of days. AI-Core failures, reservations and rating notes are kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", type=date.fromisoformat, required=True, help="First day, YYYY-MM-DD (UTC)."
        )
        parser.add_argument(
            "--until", type=date.fromisoformat, help="Last day, YYYY-MM-DD (UTC), inclusive; default today."
        )

    def handle(self, *args, since: date, until: date | None, **options) -> None:
        until = until or today()
        if until < since:
            raise CommandError("--until is before --since.")
        replies = rebuild(since, until)
        self.stdout.write(f"Counted {replies} replies from {since} to {until}.")
