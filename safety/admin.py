"""The safety screens: the review queue (Safety reviewers and superusers),
the term lists and the per-category policies."""

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Category, Flag, Policy, Term

SNIPPET_CHARS = 80
REVIEW_FIELDS = ("review", "review_note")  # all a reviewer may edit
CONTEXT_BEFORE, CONTEXT_AFTER = 6, 2


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


class ReviewFilter(admin.SimpleListFilter):
    """The queue opens on what is still to review."""

    title, parameter_name = _("review"), "review"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [*Flag.Review.choices, ("all", gettext("All"))]

    def choices(self, changelist):  # type: ignore[no-untyped-def]
        value = self.value() or Flag.Review.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag]:
        value = self.value() or Flag.Review.PENDING
        return queryset if value == "all" else queryset.filter(review=value)


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """Highest severity and oldest first; only the review is editable and nothing is deleted."""

    list_display = (
        "id",
        "created_at",
        "category",
        "categories_shown",
        "stage",
        "action",
        "unchecked",
        "text_snippet",
        "review",
        "reviewed_by",
    )
    list_display_links = ("id", "created_at")
    list_filter = (ReviewFilter, "category", "stage", "action", "unchecked", "tutor")
    list_select_related = ("reviewed_by",)
    ordering = ("-severity", "created_at", "id")
    search_fields = ("text", "student")
    show_full_result_count = False
    actions = ["confirm", "dismiss"]
    fieldsets = (
        (_("Review"), {"fields": (*REVIEW_FIELDS, "reviewed_by", "reviewed_at")}),
        (
            _("What was found"),
            {
                "fields": (
                    "created_at",
                    "stage",
                    "categories",
                    "action",
                    "providers",
                    "scores",
                    "unchecked",
                    "text",
                )
            },
        ),
        (_("Where"), {"fields": ("student", "tutor", "chat", "message", "exchange", "conversation")}),
    )
    readonly_fields = tuple(name for name in flatten_fieldsets(fieldsets) if name not in REVIEW_FIELDS)

    @admin.display(description=_("categories"))
    def categories_shown(self, flag: Flag) -> str:
        return ", ".join(str(Category(code).label) for code in flag.categories if code in Category) or "—"

    @admin.display(description=_("text"))
    def text_snippet(self, flag: Flag) -> str:
        return snippet(flag.text)

    @admin.display(description=_("The exchange in context"))
    def conversation(self, flag: Flag) -> str:
        pivot = flag.message_id or flag.exchange
        if flag.chat_id is None or pivot is None:
            return gettext(
                "The chat is gone (cleared or deleted), or nothing was saved in it: the text is all there is."
            )
        message_model = Flag._meta.get_field("message").related_model
        current = message_model._default_manager.filter(chat_id=flag.chat_id, is_current=True)
        before = list(current.filter(id__lte=pivot).order_by("-id")[:CONTEXT_BEFORE])[::-1]
        after = list(current.filter(id__gt=pivot).order_by("id")[:CONTEXT_AFTER])
        rows = format_html_join(
            "",
            '<tr{}><td style="white-space:nowrap">{}</td><td style="white-space:pre-wrap">{}</td></tr>',
            (
                (
                    mark_safe(' style="background:#fff3cd"') if m.pk == pivot else "",
                    m.get_role_display(),
                    m.content[:2000],
                )
                for m in before + after
            ),
        )
        return format_html("<table>{}</table>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Flag | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Flag, form, change: bool) -> None:  # type: ignore[no-untyped-def]
        if {"review", "review_note"} & set(form.changed_data):
            services.flag_review(flag=obj, by=request.user, review=obj.review, note=obj.review_note)

    def _review(self, request: HttpRequest, queryset: QuerySet[Flag], review: str) -> None:
        for flag in queryset:
            services.flag_review(flag=flag, by=request.user, review=review, note=flag.review_note)
        count = queryset.count()
        done = (
            ngettext("%(count)d flag confirmed.", "%(count)d flags confirmed.", count)
            if review == Flag.Review.CONFIRMED
            else ngettext("%(count)d flag dismissed.", "%(count)d flags dismissed.", count)
        )
        self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Confirm the selected flags"), permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._review(request, queryset, Flag.Review.CONFIRMED)

    @admin.action(
        description=_("Dismiss the selected flags (their exchanges may be used for training again)"),
        permissions=["change"],
    )
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._review(request, queryset, Flag.Review.DISMISSED)


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ("text", "category", "kind", "exception", "is_active", "note", "updated_at")
    list_filter = ("category", "kind", "exception", "is_active")
    list_editable = ("is_active",)
    search_fields = ("text", "note")
    fields = ("category", "kind", "text", "exception", "is_active", "note")


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("category", "action", "severity", "updated_at")
    fields = ("category", "action", "severity", "safe_text_ru", "safe_text_en")

    def get_readonly_fields(self, request: HttpRequest, obj: Policy | None = None) -> tuple[str, ...]:
        return ("category",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Policy | None = None) -> bool:
        return False
