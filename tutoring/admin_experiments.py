"""Experiments in the admin: content editors set up a draft (tutor, 2 to 4
arms), then start, stop or promote it with the buttons on its page; the ML
team sees the same page read-only. The page shows each arm's figures with
the rating's confidence interval drawn as a bar, and every state change.

State changes go through tutoring.experiments; a running or stopped
experiment is never edited.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from feedback.experiments import ArmStats, experiment_stats
from feedback.models import Feedback

from . import experiments
from .models import Experiment, ExperimentArm, ExperimentEvent, TutorVersion


class ArmFormSet(BaseInlineFormSet):
    """2 to 4 arms, one of them A, each a different version of the
    experiment's tutor, weights summing to 100."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        kept = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        positions = [arm["position"] for arm in kept]
        if len(set(positions)) != len(positions):
            raise ValidationError(gettext("Two arms have the same letter."))
        if kept and 0 not in positions:
            raise ValidationError(gettext("Arm A, the one the others are compared with, is required."))
        if self.instance.tutor_id is not None:  # else the experiment's own form says what is missing
            experiments.arms_check(self.instance.tutor_id, [(arm["version"], arm["weight"]) for arm in kept])


def experiment_perm(request: HttpRequest, action: str) -> bool:
    """Arms and events are parts of an experiment: its permissions are theirs."""
    return request.user.has_perm(f"tutoring.{action}_experiment")


class ArmInline(admin.TabularInline):
    """A draft's arms; a running or stopped experiment's are read-only."""

    model = ExperimentArm
    formset = ArmFormSet
    extra = 2
    min_num = 0
    max_num = experiments.MAX_ARMS
    fields = ("position", "version", "weight")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("version__tutor")

    def get_extra(self, request: HttpRequest, obj=None, **kwargs) -> int:
        return 0 if obj is not None else 2

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        editable = obj is None or obj.state == Experiment.State.DRAFT
        return editable and experiment_perm(request, "add" if obj is None else "change")

    has_add_permission = has_delete_permission = has_change_permission  # type: ignore[assignment]

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return experiment_perm(request, "view")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "version":
            kwargs["queryset"] = TutorVersion.objects.select_related("tutor").order_by(
                "tutor__name", "-number"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class EventInline(admin.TabularInline):
    model = ExperimentEvent
    fields = ("action", "by", "at", "what")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("state changes")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return experiment_perm(request, "view")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("by")

    @admin.display(description=_("details"))
    def what(self, event: ExperimentEvent) -> str:
        details = event.details
        if event.action == ExperimentEvent.Action.ARM_HALTED:
            return gettext("Arm %(letter)s: %(why)s") % {
                "letter": details.get("arm"),
                "why": halt_text(details),
            }
        if event.action == ExperimentEvent.Action.PROMOTED:
            return gettext("Arm %(letter)s (v%(number)s) became v%(new)s") % {
                "letter": details.get("arm"),
                "number": details.get("version"),
                "new": details.get("new_version") or details.get("version"),
            }
        return "—"


def interval_bar(arm: ArmStats) -> str:
    """The rating's 95 % interval on the 1..5 scale, its mean marked."""
    if arm.rating_ci is None or arm.rating_avg is None:
        return "—"
    low, high = arm.rating_ci

    def at(value) -> str:
        return f"{(float(value) - 1) / 4 * 100:.1f}%"

    return format_html(
        '<div class="ci-bar" title="{}–{}"><span class="ci-range" style="left:{};width:{}"></span>'
        '<span class="ci-mean" style="left:{}"></span></div><small>{} – {}</small>',
        low,
        high,
        at(low),
        f"{(float(high) - float(low)) / 4 * 100:.1f}%",
        at(arm.rating_avg),
        low,
        high,
    )


def percent(share: float) -> str:
    return f"{share * 100:.1f} %"


FIGURES = {"failure_rate": _("failure rate"), "bad_share": _("share of “too hard” and “incorrect”")}
STRUGGLE = {"none": _("no struggle"), "some": _("some struggle"), "high": _("high struggle")}


def listed(shares: dict[str, float], names: dict) -> str:
    """The shares that are not zero, by their names in the staff's language."""
    return ", ".join(f"{names[key]}: {percent(share)}" for key, share in shares.items() if share) or "—"


def halt_text(figures: dict) -> str:
    """What the guardrail halted an arm on, in the staff's words."""
    return gettext("%(figure)s %(value)s against the first arm's %(first)s (margin %(margin)s)") % {
        "figure": FIGURES.get(figures.get("figure", ""), figures.get("figure", "")),
        "value": percent(figures.get("value", 0)),
        "first": percent(figures.get("first_arm", 0)),
        "margin": percent(figures.get("margin", 0)),
    }


def arms_table(experiment: Experiment) -> str:
    """Each arm's figures (feedback.experiments): five queries however many replies."""
    arms = experiment_stats(experiment_ids=[experiment.pk])[experiment.pk]

    reactions = dict(Feedback.QuickReaction.choices)

    def row(arm: ArmStats) -> tuple:
        halted = gettext("halted: %(why)s") % {"why": halt_text(arm.halt_figures)} if arm.halted_at else "—"
        return (
            arm.letter,
            arm.version,
            arm.weight,
            halted,
            arm.students,
            arm.replies,
            arm.rating_avg if arm.rating_avg is not None else "—",
            arm.detailed_count,
            interval_bar(arm),
            listed(arm.reaction_shares, reactions),
            percent(arm.regenerate_rate),
            percent(arm.failure_rate),
            "—" if arm.latency_p50_ms is None else f"{arm.latency_p50_ms} / {arm.latency_p95_ms}",
            listed(arm.struggle, STRUGGLE),
        )

    headings = (
        gettext("Arm"), gettext("Version"), gettext("Weight, %"), gettext("Guardrail"), gettext("Students"),
        gettext("Replies"), gettext("Mean rating"), gettext("Ratings"), gettext("Rating interval (0.95)"),
        gettext("Reactions"), gettext("Regenerated"), gettext("Failed"), gettext("Latency p50 / p95, ms"),
        gettext("Struggle"),
    )  # fmt: skip
    return format_html(
        '<table class="experiment-arms"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<th>{}</th>", ((heading,) for heading in headings)),
        format_html_join(
            "",
            "<tr><td>{}</td><td>v{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (row(arm) for arm in arms),
        ),
    )


class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "tutor", "state", "started_at", "stopped_at")
    list_filter = ("state", "tutor")
    search_fields = ("name", "tutor__name")
    list_select_related = ("tutor",)

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("tutor", "created_by")

    change_form_template = "admin/tutoring/experiment/change_form.html"

    class Media:
        css = {"all": ["tutoring/experiments.css"]}

    def get_inlines(self, request: HttpRequest, obj=None) -> list:
        return [ArmInline] if obj is None else [ArmInline, EventInline]  # a new one has no events

    def get_fields(self, request: HttpRequest, obj=None) -> list[str]:
        shown = ["tutor", "name", "hypothesis"]
        if obj is not None:
            shown += ["state", "created_by", "started_at", "stopped_at", "statistics"]
        return shown

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        if obj is None:
            return []
        fixed = ["state", "created_by", "started_at", "stopped_at", "statistics"]
        return fixed if obj.state == Experiment.State.DRAFT else ["tutor", "name", "hypothesis", *fixed]

    @admin.display(description=_("statistics"))
    def statistics(self, obj: Experiment) -> str:
        return arms_table(obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Replies record their arm: only a draft (which has none) can go.
        return (obj is None or obj.state == Experiment.State.DRAFT) and super().has_delete_permission(
            request, obj
        )

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        editable = obj is None or obj.state == Experiment.State.DRAFT
        context.update(
            {
                "show_save": editable,
                "show_save_and_continue": editable,
                "show_save_and_add_another": editable,
                "can_run": obj is not None and self.has_change_permission(request, obj),
                "arms": list(obj.arms.select_related("version")) if obj is not None else [],
            }
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/start/", wrap(self.start_view), name="tutoring_experiment_start"),
            path("<int:pk>/stop/", wrap(self.stop_view), name="tutoring_experiment_stop"),
            path("<int:pk>/promote/<int:arm>/", wrap(self.promote_view), name="tutoring_experiment_promote"),
            *super().get_urls(),
        ]

    def _change(self, request: HttpRequest, pk: int, act: Callable[[Experiment], str]) -> HttpResponse:
        """Runs a state change from the page's buttons (POST, change permission)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=pk)
        if not self.has_change_permission(request, experiment):
            raise PermissionDenied
        try:
            done = act(experiment)
        except ValidationError as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:tutoring_experiment_change", args=[pk]))

    def start_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(experiment: Experiment) -> str:
            experiments.experiment_start(experiment=experiment, by=request.user)
            return gettext("Started: each student now gets their arm's version.")

        return self._change(request, pk, act)

    def stop_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        def act(experiment: Experiment) -> str:
            experiments.experiment_stop(experiment=experiment, by=request.user)
            return gettext("Stopped: every student gets the tutor's current version again.")

        return self._change(request, pk, act)

    def promote_view(self, request: HttpRequest, pk: int, arm: int) -> HttpResponse:
        def act(experiment: Experiment) -> str:
            chosen = get_object_or_404(
                ExperimentArm.objects.select_related("version"), pk=arm, experiment=experiment
            )
            made = experiments.experiment_promote(experiment=experiment, arm=chosen, by=request.user)
            if made is None:
                return gettext("Stopped; arm %(letter)s already was the current content.") % {
                    "letter": chosen.letter
                }
            return gettext("Promoted arm %(letter)s: it is the current version v%(number)s.") % {
                "letter": chosen.letter,
                "number": made.number,
            }

        return self._change(request, pk, act)
