from django import forms
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from feedback.selectors import tutor_feedback_summary

from . import services
from .catalogue import catalogue_changed
from .models import Course, Tutor
from .services import TutorContent


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
    """The course's tutors, as links: a tutor is created and edited on its own page."""

    model = Tutor
    fields = ("name", "is_active", "rating", "total_feedbacks")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


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
    """The tutor's own fields plus its content, which is saved as a new
    version (tutoring.services) when it changed."""

    model_id = forms.CharField(max_length=200, help_text="AI-Core model that answers for this tutor.")
    knowledge_base_id = forms.CharField(max_length=200, required=False)
    system_prompt = forms.CharField(
        widget=SystemPromptWidget(),
        required=False,
        help_text="Instructions sent to AI-Core with every message. Saving a change makes a new version.",
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        label="What changed and why",
        help_text="Kept with the new version, for whoever reads the history.",
    )

    class Meta:
        model = Tutor
        fields = ["course", "name", "description", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        content = TutorContent.of(self.instance.current_version) if self.instance.pk else None
        if content is not None:
            for name in ("model_id", "knowledge_base_id", "system_prompt"):
                self.fields[name].initial = getattr(content, name)

    def content(self) -> TutorContent:
        data = self.cleaned_data
        return TutorContent(data["system_prompt"], data["model_id"], data.get("knowledge_base_id", ""))


@admin.register(Tutor)
class TutorAdmin(ChangesCatalogue, admin.ModelAdmin):
    form = TutorForm
    list_display = ("name", "course", "model_id", "rating", "total_feedbacks", "is_active", "updated_at")
    list_filter = ("course", "is_active")
    list_select_related = ("course", "current_version")
    search_fields = ("name", "description")
    autocomplete_fields = ("course",)
    readonly_fields = ("rating", "total_feedbacks", "feedback_summary", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("course", "name", "description", "is_active")}),
        ("AI configuration", {"fields": ("model_id", "knowledge_base_id", "system_prompt", "note")}),
        (
            "Feedback (computed)",
            {"fields": ("rating", "total_feedbacks", "feedback_summary")},
        ),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is not None and not self.has_change_permission(request, obj):
            kwargs["form"] = forms.ModelForm  # view only: no content fields to fill in
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            return [
                (name, {**opts, "fields": [f for f in opts["fields"] if f != "note"]})
                for name, opts in fieldsets
            ]
        return fieldsets

    def save_model(self, request: HttpRequest, obj: Tutor, form: TutorForm, change: bool) -> None:
        super().save_model(request, obj, form, change)  # the tutor's own fields (and catalogue_changed)
        services.tutor_version_save(
            tutor=obj, content=form.content(), note=form.cleaned_data["note"], by=request.user
        )

    @admin.display(description="Model", ordering="current_version__model_id")
    def model_id(self, obj: Tutor) -> str:
        return obj.model_id

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
