"""The experiments' guardrail (tutoring.experiments.guard) over every running
experiment: run it every minute from cron (deploy/crontab). On several app
servers only one runs it at a time (tutor_platform.jobs)."""

from typing import Any

from django.core.management.base import BaseCommand

from tutor_platform.jobs import only_one
from tutoring.experiments import guard_running


class Command(BaseCommand):
    help = (
        "Halt every experiment arm whose failure rate or too_hard + incorrect share exceeds the "
        "first arm's by EXPERIMENT_GUARDRAIL_MARGIN (each with 30 replies or more)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with only_one("guard_experiments") as mine:
            if not mine:
                self.stdout.write("Another app server is checking the experiments now: nothing done here.")
                return
            halts = guard_running()
        for halt in halts:
            self.stdout.write(
                f"Halted arm {halt.arm}: {halt.figure} {halt.value} against the first arm's "
                f"{halt.first_arm} (margin {halt.margin})."
            )
        if not halts and options["verbosity"] > 1:  # cron mails what it prints: only the halts
            self.stdout.write("No arm breaches the guardrail.")
