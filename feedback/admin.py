import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from attachments.admin import thumbnails
from tutor_platform.pseudonyms import NoLookupsByStudent, student_key

from . import services
from .models import Feedback
from .pairs import PairFilter, dpo_lines
from .selectors import tutors_feedback_overview
from .training import training_export_claim, training_lines

SNIPPET_CHARS = 70


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


@admin.register(Feedback)
class FeedbackAdmin(NoLookupsByStudent, admin.ModelAdmin):
    """The ML team's triage screen. Only `processed` is editable; the rest is the student's."""

    # Narrow columns and two short snippets: the list fits a 1366-px screen.
    list_display = (
        "when",
        "tutor",
        "version",
        "verdict",
        "improvement_snippet",
        "reply_snippet",
        "allow_training",
        "processed",
    )
    list_filter = (
        "processed",
        "allow_training",
        "feedback_type",
        "rating",
        "quick_reaction",
        "tutor",
        "tutor__course",
    )
    list_select_related = ("tutor", "tutor_version", "experiment_arm")
    change_list_template = "admin/feedback/feedback/change_list.html"
    search_fields = ("positive_text", "improvement_text", "reply_content", "prompt_content")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["mark_processed", "mark_unprocessed", "export_for_training"]
    fieldsets = (
        (None, {"fields": ("processed", "processed_at", "processed_by")}),
        (
            pgettext_lazy("one", "feedback"),
            {
                "fields": (
                    "student",
                    "tutor",
                    "chat",
                    "feedback_type",
                    "rating",
                    "quick_reaction",
                    "positive_text",
                    "improvement_text",
                    "allow_training",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            _("What was rated"),
            {"fields": ("prompt_block", "attached_block", "reply_block", "reply_metadata_pretty")},
        ),
    )
    # Everything on the page but `processed` is the student's, and read-only.
    readonly_fields = tuple(
        field for _name, options in fieldsets for field in options["fields"] if field != "processed"
    )

    class Media:
        css = {"all": ["feedback/triage.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_urls(self) -> list:
        overview = self.admin_site.admin_view(self.overview_view)
        pairs = self.admin_site.admin_view(self.preference_pairs_view)
        return [
            path("overview/", overview, name="feedback_feedback_overview"),
            path("preference-pairs.jsonl", pairs, name="feedback_feedback_preference_pairs"),
            *super().get_urls(),
        ]

    def preference_pairs_view(self, request: HttpRequest) -> StreamingHttpResponse:
        """Every preference pair (consented) in the DPO layout, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        response = StreamingHttpResponse(
            dpo_lines(PairFilter()), content_type="application/x-ndjson; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="preference-pairs-{stamp}.jsonl"'
        return response

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """Per tutor: count, mean rating, share of `incorrect` reactions,
        unprocessed (linked to the filtered list). One grouped query."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:feedback_feedback_changelist")
        rows = [
            {**row, "unprocessed_url": f"{changelist}?tutor__id__exact={row['tutor_id']}&processed__exact=0"}
            for row in tutors_feedback_overview()
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Feedback by tutor"),
            "opts": self.model._meta,
            "rows": rows,
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/feedback/feedback/overview.html", context)

    @admin.display(description=_("Created"), ordering="created_at")
    def when(self, obj: Feedback) -> str:
        return date_format(timezone.localtime(obj.created_at), "DATETIME_FORMAT")

    @admin.display(description=_("Ver."), ordering="tutor_version__number")
    def version(self, obj: Feedback) -> str:
        """The version, and the experiment arm that asked with it (`v2 · B`)."""
        if obj.tutor_version is None:
            return "—"
        arm = f" · {obj.experiment_arm.letter}" if obj.experiment_arm else ""
        return f"v{obj.tutor_version.number}{arm}"

    @admin.display(description=_("Rating / reaction"))
    def verdict(self, obj: Feedback) -> str:
        return f"{obj.rating} ★" if obj.rating else obj.get_quick_reaction_display()

    @admin.display(description=_("What to improve"))
    def improvement_snippet(self, obj: Feedback) -> str | None:
        # Praise is not something to improve: none given shows the empty mark.
        return snippet(obj.improvement_text) if obj.improvement_text.strip() else None

    @admin.display(description=_("Reply"))
    def reply_snippet(self, obj: Feedback) -> str:
        return snippet(obj.reply_content)

    @admin.display(description=_("Student (pseudonymous key)"))
    def student(self, obj: Feedback) -> str:
        return student_key(obj.user_id) or gettext("— (erased)")

    @admin.display(description=_("Prompt (the student's message)"))
    def prompt_block(self, obj: Feedback) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.prompt_content or "—")

    @admin.display(description=_("What the student attached"))
    def attached_block(self, obj: Feedback) -> str:
        asked = obj.message.reply_to if obj.message is not None else None
        return thumbnails(asked.attachments if asked is not None else [])

    @admin.display(description=_("Reply (the tutor's answer)"))
    def reply_block(self, obj: Feedback) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', obj.reply_content)

    @admin.display(description=_("Reply metadata"))
    def reply_metadata_pretty(self, obj: Feedback) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.reply_metadata, indent=2, ensure_ascii=False))

    def save_model(self, request: HttpRequest, obj: Feedback, form, change: bool) -> None:
        # Everything but `processed` is read-only; the service sets who and when.
        if "processed" in form.changed_data:
            services.feedback_mark_processed(ids=[obj.pk], by=request.user, processed=obj.processed)
            obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Feedback) -> None:
        services.feedback_delete(feedback=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        for feedback in queryset:
            services.feedback_delete(feedback=feedback)

    def _mark(self, request: HttpRequest, queryset: QuerySet[Feedback], processed: bool) -> None:
        ids = list(queryset.values_list("id", flat=True))
        result = services.feedback_mark_processed(ids=ids, by=request.user, processed=processed)
        template = (
            ngettext(
                "%(count)d feedback item marked processed.",
                "%(count)d feedback items marked processed.",
                result.updated,
            )
            if processed
            else ngettext(
                "%(count)d feedback item marked unprocessed.",
                "%(count)d feedback items marked unprocessed.",
                result.updated,
            )
        )
        self.message_user(request, template % {"count": result.updated}, messages.SUCCESS)

    @admin.action(description=_("Mark as processed"), permissions=["change"])
    def mark_processed(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._mark(request, queryset, processed=True)

    @admin.action(description=_("Mark as unprocessed"), permissions=["change"])
    def mark_unprocessed(self, request: HttpRequest, queryset: QuerySet[Feedback]) -> None:
        self._mark(request, queryset, processed=False)

    @admin.action(
        description=_("Export for training (consented items; marks them processed)"), permissions=["change"]
    )
    def export_for_training(
        self, request: HttpRequest, queryset: QuerySet[Feedback]
    ) -> StreamingHttpResponse:
        # Only what the student allowed for training leaves the building,
        # whatever was ticked, and only once (feedback.training).
        batch = training_export_claim(by=request.user, ids=queryset.values_list("id", flat=True))
        response = StreamingHttpResponse(
            training_lines(batch.id), content_type="application/x-ndjson; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="training-{stamp}-{batch.count}.jsonl"'
        return response
