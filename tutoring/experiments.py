"""Experiments (API_CONTRACT.md, "Experiments"): which version answers a
student, and the only writes to an experiment's state.

Assignment needs no table: a student's arm is a hash of their
pseudonymous key and the experiment's id, cut by the arms' weights
(`arm_for`), the same on every server and after every restart. An arm the
guardrail halted gives its students to the first arm; the others keep
theirs.

The tutor's `running_experiment` mirrors the experiment's state, under
the tutor's row lock: a send reads it in the chat's own query, so a tutor
without an experiment costs a send nothing.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from feedback.experiments import ArmStats, experiment_stats
from tutor_platform.pseudonyms import student_key

from . import services
from .models import Experiment, ExperimentArm, ExperimentEvent, Tutor, TutorVersion

BUCKETS = 10_000  # a weight of 1 % is 100 buckets
MIN_ARMS, MAX_ARMS = 2, 4
GUARDRAIL_MIN_REPLIES = 30


def bucket(student: str, experiment_id: int) -> int:
    """Where a student falls in an experiment, 0..BUCKETS-1."""
    digest = hashlib.sha256(f"{experiment_id}:{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_for(arms: Sequence[ExperimentArm], student: str, experiment_id: int) -> ExperimentArm:
    """The student's arm: arms (by position) cover the buckets in the
    proportion of their weights; a halted arm's students go to the first."""
    point, edge = bucket(student, experiment_id), 0
    ordered = sorted(arms, key=lambda arm: arm.position)
    for arm in ordered:
        edge += arm.weight * BUCKETS // 100
        if point < edge:
            return ordered[0] if arm.halted_at is not None else arm
    return ordered[0]  # weights summing to less than 100 (never started so): the rest to the first


@dataclass(frozen=True)
class Assigned:
    """The version that answers a student, and the arm it came from."""

    version: TutorVersion | None
    arm: ExperimentArm | None = None


def assigned(tutor: Tutor, user_id: int) -> Assigned:
    """The tutor's current version or, while an experiment runs on it, the
    arm's version of student `user_id`: no query without an experiment, one with."""
    if tutor.running_experiment_id is None:
        return Assigned(tutor.current_version)
    arms = list(
        ExperimentArm.objects.filter(
            experiment_id=tutor.running_experiment_id, experiment__state=Experiment.State.RUNNING
        ).select_related("version")
    )
    if not arms:  # stopped since the chat was read
        return Assigned(tutor.current_version)
    arm = arm_for(arms, student_key(user_id) or "", tutor.running_experiment_id)
    return Assigned(arm.version, arm)


def arms_check(tutor_id: int, arms: Sequence[tuple[TutorVersion, int]]) -> None:
    """2 to 4 arms, each a different version of the tutor, weights 1..100 summing to 100."""
    if not MIN_ARMS <= len(arms) <= MAX_ARMS:
        raise ValidationError(gettext("An experiment has 2 to 4 arms."), code="arms")
    versions = [version for version, _ in arms]
    if any(version.tutor_id != tutor_id for version in versions):
        raise ValidationError(gettext("Every arm must be a version of the experiment's tutor."), code="arms")
    if len({version.pk for version in versions}) != len(versions):
        raise ValidationError(gettext("Two arms have the same version."), code="arms")
    if sum(weight for _, weight in arms) != 100:
        raise ValidationError(gettext("The arms' weights must sum to 100."), code="weights")


def _locked(experiment: Experiment) -> tuple[Tutor, Experiment]:
    """The tutor's row locked (starts, stops and sends of one tutor queue
    on it), then the experiment as it is now."""
    tutor = Tutor.objects.select_for_update().get(pk=experiment.tutor_id)
    return tutor, Experiment.objects.get(pk=experiment.pk)


def _record(experiment: Experiment, action: str, by: User | None, **details: Any) -> None:
    ExperimentEvent.objects.create(experiment=experiment, action=action, by=by, details=details)


def experiment_start(*, experiment: Experiment, by: User | None) -> Experiment:
    """Starts a draft: its arms checked, at most one running per tutor (the
    database's constraint backs the check made under the tutor's lock)."""
    with transaction.atomic():
        tutor, current = _locked(experiment)
        if current.state != Experiment.State.DRAFT:
            raise ValidationError(gettext("Only a draft experiment can be started."), code="state")
        arms = list(current.arms.select_related("version"))
        arms_check(tutor.pk, [(arm.version, arm.weight) for arm in arms])
        if tutor.running_experiment_id is not None:
            raise ValidationError(gettext("This tutor already has a running experiment."), code="running")
        current.state, current.started_at = Experiment.State.RUNNING, timezone.now()
        try:
            with transaction.atomic():
                current.save(update_fields=["state", "started_at"])
        except IntegrityError:
            raise ValidationError(
                gettext("This tutor already has a running experiment."), code="running"
            ) from None
        Tutor.objects.filter(pk=tutor.pk).update(running_experiment=current)
        _record(current, ExperimentEvent.Action.STARTED, by)
    return current


def _stop(tutor: Tutor, experiment: Experiment) -> None:
    experiment.state, experiment.stopped_at = Experiment.State.STOPPED, timezone.now()
    experiment.save(update_fields=["state", "stopped_at"])
    if tutor.running_experiment_id == experiment.pk:
        Tutor.objects.filter(pk=tutor.pk).update(running_experiment=None)


def experiment_stop(*, experiment: Experiment, by: User | None) -> Experiment:
    """Stops a running experiment: the next reply to every student comes
    from the tutor's current version."""
    with transaction.atomic():
        tutor, current = _locked(experiment)
        if current.state != Experiment.State.RUNNING:
            raise ValidationError(gettext("Only a running experiment can be stopped."), code="state")
        _stop(tutor, current)
        _record(current, ExperimentEvent.Action.STOPPED, by)
    return current


def experiment_promote(*, experiment: Experiment, arm: ExperimentArm, by: User | None) -> TutorVersion | None:
    """Makes `arm`'s version the tutor's current one (a new version, as a
    restore makes; None when it already is the current content) and stops
    the experiment, in one transaction."""
    with transaction.atomic():
        tutor, current = _locked(experiment)
        if current.state != Experiment.State.RUNNING:
            raise ValidationError(gettext("Only a running experiment can be promoted."), code="state")
        if arm.experiment_id != current.pk:
            raise ValidationError(gettext("That arm is not in this experiment."), code="arm")
        version = services.tutor_version_save(
            tutor=tutor,
            content=services.TutorContent.of(arm.version),  # type: ignore[arg-type]
            note=gettext("Promoted arm %(letter)s (v%(number)s) of experiment “%(name)s”")
            % {"letter": arm.letter, "number": arm.version.number, "name": current.name},
            by=by,
        )
        _stop(tutor, current)
        _record(
            current,
            ExperimentEvent.Action.PROMOTED,
            by,
            arm=arm.letter,
            version=arm.version.number,
            new_version=version.number if version else None,
        )
    return version


@dataclass(frozen=True)
class Halt:
    """Why the guardrail halted an arm: the figure, both arms' values."""

    arm: str
    figure: str  # failure_rate or bad_share (too_hard + incorrect)
    value: float
    first_arm: float
    margin: float


def guardrail_breach(first: ArmStats, arm: ArmStats) -> Halt | None:
    """Whether `arm`'s figures exceed the first arm's by the margin (each
    with GUARDRAIL_MIN_REPLIES replies or more). Compared as exact fractions:
    a difference of exactly the margin is a breach."""
    if first.replies < GUARDRAIL_MIN_REPLIES or arm.replies < GUARDRAIL_MIN_REPLIES:
        return None
    margin = Fraction(str(settings.EXPERIMENT_GUARDRAIL_MARGIN))
    for figure in ("failure_rate", "bad_share"):
        value, baseline = getattr(arm, f"exact_{figure}"), getattr(first, f"exact_{figure}")
        if value - baseline >= margin:
            return Halt(arm.letter, figure, round(float(value), 4), round(float(baseline), 4), float(margin))
    return None


def guard(experiment: Experiment) -> list[Halt]:
    """Halts every arm of a running experiment that breaches the guardrail
    (its students go to the first arm), recording each halt with its
    figures. Returns the halts made."""
    if experiment.state != Experiment.State.RUNNING:
        return []
    stats = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk]
    first, halts = stats[0], []
    for arm_stats in stats[1:]:
        if arm_stats.halted_at is not None:
            continue
        halt = guardrail_breach(first, arm_stats)
        if halt is None:
            continue
        with transaction.atomic():
            changed = ExperimentArm.objects.filter(pk=arm_stats.arm_id, halted_at__isnull=True).update(
                halted_at=timezone.now(), halt_figures=halt.__dict__
            )
            if changed:
                _record(experiment, ExperimentEvent.Action.ARM_HALTED, None, **halt.__dict__)
                halts.append(halt)
    return halts


def guard_running() -> list[Halt]:
    """The guardrail over every running experiment (the scheduled job)."""
    halts = []
    for experiment in Experiment.objects.filter(state=Experiment.State.RUNNING):
        halts += guard(experiment)
    return halts
