from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from feedback.selectors import tutor_feedback_summary

from .catalogue import catalogue_changed
from .models import Course, Tutor


class ChangesCatalogue:
    """Every admin write to courses and tutors starts a new catalogue generation."""

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        catalogue_changed()

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        catalogue_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        catalogue_changed()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        catalogue_changed()


class TutorInline(admin.TabularInline):
    model = Tutor
    fields = ("name", "model_id", "is_active", "rating", "total_feedbacks")
    readonly_fields = ("rating", "total_feedbacks")
    extra = 0
    show_change_link = True


@admin.register(Course)
class CourseAdmin(ChangesCatalogue, admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "tutors_count", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TutorInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        return super().get_queryset(request).annotate(tutors_total=Count("tutors"))

    @admin.display(description="Tutors", ordering="tutors_total")
    def tutors_count(self, obj: Course) -> int:
        return obj.tutors_total


class SystemPromptWidget(forms.Textarea):
    """A large monospace text area with a live character count (see prompt_editor.js)."""

    template_name = "admin/tutoring/system_prompt_widget.html"

    def __init__(self) -> None:
        super().__init__(attrs={"rows": 24, "class": "system-prompt", "spellcheck": "true"})

    class Media:
        css = {"all": ["tutoring/prompt_editor.css"]}
        js = ["tutoring/prompt_editor.js"]


class TutorForm(forms.ModelForm):
    class Meta:
        model = Tutor
        fields = [
            "course",
            "name",
            "description",
            "is_active",
            "model_id",
            "knowledge_base_id",
            "system_prompt",
        ]
        widgets = {"system_prompt": SystemPromptWidget()}


@admin.register(Tutor)
class TutorAdmin(ChangesCatalogue, admin.ModelAdmin):
    form = TutorForm
    list_display = ("name", "course", "model_id", "rating", "total_feedbacks", "is_active", "updated_at")
    list_filter = ("course", "is_active")
    list_select_related = ("course",)
    search_fields = ("name", "description")
    autocomplete_fields = ("course",)
    readonly_fields = ("rating", "total_feedbacks", "feedback_summary", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("course", "name", "description", "is_active")}),
        ("AI configuration", {"fields": ("model_id", "knowledge_base_id", "system_prompt")}),
        (
            "Feedback (computed)",
            {"fields": ("rating", "total_feedbacks", "feedback_summary")},
        ),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Feedback summary")
    def feedback_summary(self, obj: Tutor) -> str:
        if obj.pk is None:
            return "—"
        summary = tutor_feedback_summary(tutor_id=obj.pk)
        ratings = format_html_join(
            "", "<tr><th>{} ★</th><td>{}</td></tr>", ((r, n) for r, n in summary.ratings.items())
        )
        reactions = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((label, n) for label, n in summary.reactions.items())
        )
        return format_html(
            '<div class="feedback-summary"><table><caption>Ratings (detailed)</caption>{}</table>'
            "<table><caption>Quick reactions</caption>{}</table>"
            "<p><strong>{}</strong> unprocessed feedback item(s).</p></div>",
            ratings,
            reactions,
            summary.unprocessed,
        )
