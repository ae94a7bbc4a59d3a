from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from aicore.client import known_models
from feedback.selectors import tutor_feedback_summary

from . import services
from .admin_experiments import ExperimentAdmin
from .admin_versions import history_table, try_it_panel, version_urls
from .catalogue import catalogue_changed
from .models import Course, Experiment, TeachingMode, Tutor, TutorVersion
from .services import TutorContent, normalize_prompt


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


class CourseForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = ["name", "slug", "description", "is_active"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Course.objects.exclude(pk=self.instance.pk).values_list("name", flat=True)
        if any(other.casefold() == name.casefold() for other in others):
            raise forms.ValidationError(
                _("A course named “%(name)s” already exists. Choose another name or edit that course."),
                params={"name": name},
                code="duplicate",
            )
        return name


@admin.register(Course)
class CourseAdmin(ChangesCatalogue, admin.ModelAdmin):
    form = CourseForm
    list_display = ("name", "slug", "is_active", "tutors_count", "updated_at")
    list_filter = ("is_active",)
    actions = ["activate", "deactivate"]
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [TutorInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        return super().get_queryset(request).annotate(tutors_total=Count("tutors"))

    @admin.display(description=_("Tutors"), ordering="tutors_total")
    def tutors_count(self, obj: Course) -> int:
        return obj.tutors_total

    @admin.action(description=_("Activate selected courses (publish to students)"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        changed = services.courses_set_active(
            course_ids=list(queryset.values_list("pk", flat=True)), active=True
        )
        done = ngettext("%(count)d course activated.", "%(count)d courses activated.", changed)
        self.message_user(request, done % {"count": changed}, messages.SUCCESS)

    @admin.action(
        description=_("Deactivate selected courses (hide them and their tutors)"), permissions=["change"]
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        changed = services.courses_set_active(
            course_ids=list(queryset.values_list("pk", flat=True)), active=False
        )
        done = ngettext("%(count)d course deactivated.", "%(count)d courses deactivated.", changed)
        self.message_user(request, done % {"count": changed}, messages.SUCCESS)


class SystemPromptWidget(forms.Textarea):
    """A large monospace text area with a live character count (see prompt_editor.js)."""

    template_name = "admin/tutoring/system_prompt_widget.html"

    def __init__(self) -> None:
        super().__init__(attrs={"rows": 24, "class": "system-prompt", "spellcheck": "true"})

    class Media:
        css = {"all": ["tutoring/prompt_editor.css"]}
        js = ["tutoring/prompt_editor.js"]


class ModelIdInput(forms.TextInput):
    """Free text that offers, as the editor types, the models the configured
    OpenAI-compatible servers list (a provider's as `<provider>/<model>`,
    aicore.client.known_models); nothing to offer with AI-Core alone."""

    def get_context(self, name: str, value: object, attrs: dict | None) -> dict:
        models = known_models()
        if models:
            attrs = {**(attrs or {}), "list": f"{name}-models"}
        context = super().get_context(name, value, attrs)
        context["models"] = models
        return context

    def render(self, name, value, attrs=None, renderer=None) -> str:  # type: ignore[no-untyped-def]
        context = self.get_context(name, value, attrs)
        field = self._render(self.template_name, context, renderer)
        if not context["models"]:
            return field
        options = format_html_join("", '<option value="{}">', ((model,) for model in context["models"]))
        return field + format_html('<datalist id="{}-models">{}</datalist>', name, options)


class TutorForm(forms.ModelForm):
    """The tutor's own fields plus its content, which is saved as a new
    version (tutoring.services) when it changed."""

    model_id = forms.CharField(
        label=_("Model id"),
        max_length=200,
        widget=ModelIdInput(),
        help_text=_(
            "AI-Core model that answers for this tutor, or provider/model for a model another "
            "configured server runs."
        ),
    )
    knowledge_base_id = forms.CharField(label=_("Knowledge base id"), max_length=200, required=False)
    teaching_mode = forms.ChoiceField(
        label=_("Teaching mode"),
        choices=TeachingMode.choices,
        initial=TeachingMode.SOCRATIC,
        required=False,  # not posted: the default
        help_text=_("How the tutor teaches; changing it makes a new version, like the prompt."),
    )
    system_prompt = forms.CharField(
        label=_("System prompt"),
        widget=SystemPromptWidget(),
        required=False,
        help_text=_("Instructions sent to AI-Core with every message. Saving a change makes a new version."),
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        label=_("What changed and why"),
        help_text=_("Kept with the new version, for whoever reads the history."),
    )
    # The version the editor's page showed: a save from a page opened before
    # another editor's save is refused (clean), never a silent undo.
    base_version = forms.IntegerField(
        label=_("Base version"), widget=forms.HiddenInput, required=False, min_value=0
    )

    class Meta:
        model = Tutor
        fields = ["course", "name", "description", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        version = self.instance.current_version if self.instance.pk else None
        content = TutorContent.of(version)
        if content is not None:
            for name in ("model_id", "knowledge_base_id", "teaching_mode", "system_prompt"):
                self.fields[name].initial = getattr(content, name)
        self.fields["base_version"].initial = version.number if version else 0

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk:
            self._check_not_stale(data.get("base_version"))
        if data.get("is_active") and not normalize_prompt(data.get("system_prompt", "")):
            self.add_error(
                "system_prompt",
                _("An active tutor needs a system prompt. Write one, or untick “Is active” to save a draft."),
            )
        return data

    def _check_not_stale(self, base: int | None) -> None:
        """Locks the tutor's row until the save commits (the admin runs a
        change in one transaction), then refuses a page older than the
        current version: two editors saving at once save one after the
        other, and the second is told to reload."""
        locked = (
            Tutor.objects.select_for_update()
            .filter(pk=self.instance.pk)
            .values_list("current_version_id", flat=True)
        )
        current = TutorVersion.objects.filter(pk=locked.first()).select_related("created_by").first()
        if current is None or current.number == base:
            return
        raise forms.ValidationError(
            _(
                "Version v%(number)s was saved by %(by)s at %(when)s, after you opened this page "
                "(v%(base)s). Your changes were not saved: reload the page, then apply them again."
            ),
            params={
                "number": current.number,
                "by": current.created_by or "—",
                "when": date_format(timezone.localtime(current.created_at), "DATETIME_FORMAT"),
                "base": base or 0,
            },
            code="stale_version",
        )

    def content(self) -> TutorContent:
        data = self.cleaned_data
        return TutorContent(
            data["system_prompt"],
            data["model_id"],
            data.get("knowledge_base_id", ""),
            data.get("teaching_mode", ""),
        )


@admin.register(Tutor)
class TutorAdmin(ChangesCatalogue, admin.ModelAdmin):
    """A tutor's page: its fields, its content (saved as versions), the
    try-it panel, the version history and the feedback summary."""

    form = TutorForm
    list_display = (
        "name",
        "course",
        "model_id",
        "version",
        "rating",
        "total_feedbacks",
        "is_active",
        "updated_at",
    )
    list_filter = ("course", "is_active")
    list_select_related = ("course", "current_version")
    search_fields = ("name", "description")
    autocomplete_fields = ("course",)
    actions = ["activate", "deactivate"]
    readonly_fields = (
        "rating",
        "total_feedbacks",
        "feedback_summary",
        "version_history",
        "try_it",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("course", "name", "description", "is_active")}),
        (
            _("AI configuration"),
            {
                "fields": (
                    "model_id",
                    "knowledge_base_id",
                    "teaching_mode",
                    "system_prompt",
                    "note",
                    "base_version",
                )
            },
        ),
        (_("Try it before it goes live"), {"fields": ("try_it",)}),
        (_("Version history"), {"fields": ("version_history",)}),
        (
            _("Feedback (computed)"),
            {"fields": ("rating", "total_feedbacks", "feedback_summary")},
        ),
        (_("Dates"), {"fields": ("created_at", "updated_at")}),
    )

    class Media:
        css = {"all": ["tutoring/versions.css"]}
        js = ["tutoring/try_it.js"]

    def get_urls(self) -> list:
        return [*version_urls(self), *super().get_urls()]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is not None and not self.has_change_permission(request, obj):
            kwargs["form"] = forms.ModelForm  # view only: no content fields to fill in
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        hidden = set()
        if obj is None:
            hidden |= {
                "base_version",
                "version_history",
                "rating",
                "total_feedbacks",
                "feedback_summary",
                "created_at",
                "updated_at",
            }
        elif not self.has_change_permission(request, obj):
            hidden |= {"note", "try_it", "base_version"}  # the ML team reads history and statistics only
        trimmed = [
            (name, {**opts, "fields": [f for f in opts["fields"] if f not in hidden]})
            for name, opts in fieldsets
        ]
        return [(name, opts) for name, opts in trimmed if opts["fields"]]

    def save_model(self, request: HttpRequest, obj: Tutor, form: TutorForm, change: bool) -> None:
        content, note = form.content(), form.cleaned_data["note"]
        if not change:
            services.tutor_create(tutor=obj, content=content, note=note, by=request.user)
            return
        # The current version and running experiment as they are under the lock
        # (TutorForm.clean), not as read before it.
        obj.current_version_id, obj.running_experiment_id = Tutor.objects.values_list(
            "current_version_id", "running_experiment_id"
        ).get(pk=obj.pk)
        super().save_model(request, obj, form, change)  # the tutor's own fields (and catalogue_changed)
        version = services.tutor_version_save(tutor=obj, content=content, note=note, by=request.user)
        if version is not None:
            self.message_user(
                request, gettext("Saved as version v%(number)s.") % {"number": version.number}, messages.INFO
            )

    @admin.display(description=_("Model"), ordering="current_version__model_id")
    def model_id(self, obj: Tutor) -> str:
        return obj.model_id

    # The current version's content, as the ML team (view only) reads it.
    @admin.display(description=_("Knowledge base id"))
    def knowledge_base_id(self, obj: Tutor) -> str:
        return obj.knowledge_base_id

    @admin.display(description=_("Teaching mode"))
    def teaching_mode(self, obj: Tutor) -> str:
        version = obj.current_version
        return TeachingMode(version.teaching_mode).label if version else "—"

    @admin.display(description=_("System prompt"))
    def system_prompt(self, obj: Tutor) -> str:
        return obj.system_prompt

    @admin.display(description=_("Version"), ordering="current_version__number")
    def version(self, obj: Tutor) -> str:
        return f"v{obj.current_version.number}" if obj.current_version else "—"

    @admin.display(description=_("Versions"))
    def version_history(self, obj: Tutor) -> str:
        return history_table(obj) if obj.pk else "—"

    @admin.display(description=_("Try a question"))
    def try_it(self, obj: Tutor | None) -> str:
        return try_it_panel(obj if obj is not None and obj.pk else None)

    @admin.action(description=_("Activate selected tutors (publish to students)"), permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Tutor]) -> None:
        result = services.tutors_set_active(
            tutor_ids=list(queryset.values_list("pk", flat=True)), active=True
        )
        done = ngettext("%(count)d tutor activated.", "%(count)d tutors activated.", result.changed)
        self.message_user(request, done % {"count": result.changed}, messages.SUCCESS)
        if result.without_prompt:
            self.message_user(
                request,
                gettext("Left inactive, they have no system prompt yet: %(names)s.")
                % {"names": ", ".join(result.without_prompt)},
                messages.WARNING,
            )

    @admin.action(description=_("Deactivate selected tutors (hide from students)"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Tutor]) -> None:
        result = services.tutors_set_active(
            tutor_ids=list(queryset.values_list("pk", flat=True)), active=False
        )
        done = ngettext("%(count)d tutor deactivated.", "%(count)d tutors deactivated.", result.changed)
        students = ngettext(
            "%(count)d student has chats with them: they can read those chats but not continue them.",
            "%(count)d students have chats with them: they can read those chats but not continue them.",
            result.students_with_chats,
        )
        self.message_user(
            request,
            f"{done % {'count': result.changed}} {students % {'count': result.students_with_chats}}",
            messages.SUCCESS,
        )

    @admin.display(description=_("Feedback summary"))
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
        unprocessed = format_html(
            ngettext("{} unprocessed feedback item.", "{} unprocessed feedback items.", summary.unprocessed),
            format_html("<strong>{}</strong>", summary.unprocessed),
        )
        return format_html(
            '<div class="feedback-summary"><table><caption>{}</caption>{}</table>'
            "<table><caption>{}</caption>{}</table><p>{}</p></div>",
            gettext("Ratings (detailed)"),
            ratings,
            gettext("Quick reactions"),
            reactions,
            unprocessed,
        )


admin.site.register(Experiment, ExperimentAdmin)
