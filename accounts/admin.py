import json

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from privacy import services as erasure

from . import services
from .models import User
from .roles import CONTENT_EDITORS, ML_TEAM, Role, role_of

ROLE_HELP = _(
    "What this person may do. Content editors maintain courses, tutors and prompts; "
    "the ML team triages feedback (admin and /api/v1/ml/); safety reviewers work the safety "
    "review queue and its term lists; superusers manage everything, users too."
)


class UserCreateForm(UserCreationForm):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.STUDENT, help_text=ROLE_HELP)

    class Meta:
        model = User
        fields = ("email", "username", "full_name")


def current_role(user: User) -> Role | None:
    return role_of(
        is_superuser=user.is_superuser,
        is_staff=user.is_staff,
        group_names={group.name for group in user.groups.all()},
    )


class UserEditForm(UserChangeForm):
    role = forms.ChoiceField(
        label=_("Role"),
        choices=[("", _("— (staff with no role's group: flags and groups as set below)")), *Role.choices],
        required=False,
        help_text=format_lazy(
            "{} {}", ROLE_HELP, _("Changing it sets staff status, superuser status and the group below.")
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["role"].initial = current_role(self.instance)

    class Meta:
        model = User
        fields = "__all__"
        help_texts = {
            "is_staff": format_lazy(
                _(
                    "May log in to this admin. What they see there comes from their groups: "
                    "“{editors}” (courses, tutors) or “{ml}” (feedback). Staff with no group see nothing."
                ),
                editors=CONTENT_EDITORS,
                ml=ML_TEAM,
            ),
            "groups": format_lazy(
                _("“{editors}” edit courses and tutors; “{ml}” triage feedback."),
                editors=CONTENT_EDITORS,
                ml=ML_TEAM,
            ),
        }


class StaffLoginForm(AdminAuthenticationForm):
    """Says why a known account cannot enter, instead of the generic error."""

    def confirm_login_allowed(self, user: User) -> None:
        if user.is_active and not user.is_staff and user.groups.exists():
            raise forms.ValidationError(
                _(
                    "This account belongs to a staff group but is not marked as staff. "
                    "Ask a superuser to tick “Staff status” on it."
                ),
                code="not_staff",
            )
        super().confirm_login_allowed(user)


admin.site.login_form = StaffLoginForm


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Users are managed by superusers only (see has_*_permission)."""

    form = UserEditForm
    add_form = UserCreateForm
    list_display = ("email", "username", "full_name", "role", "is_active", "created_at", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups", "created_at")
    search_fields = ("email", "username", "full_name")
    ordering = ("-created_at",)
    readonly_fields = ("created_at", "updated_at", "last_login", "preferences_pretty", "allow_training")
    filter_horizontal = ("groups", "user_permissions")
    fieldsets = (
        (None, {"fields": ("email", "username", "full_name", "password")}),
        (_("Preferences and consent"), {"fields": ("preferences_pretty", "allow_training")}),
        (
            _("Learner context"),
            {"fields": ("learner_grade", "learner_level", "learner_language", "learner_goals")},
        ),
        (_("Daily quota"), {"fields": ("daily_messages_limit", "daily_tokens_limit")}),
        (
            _("Permissions"),
            {"fields": ("role", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Dates"), {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "username", "full_name", "role", "password1", "password2"),
            },
        ),
    )

    def get_deleted_objects(self, objs, request):
        # Feedback protects its author from a plain cascade; the erasure
        # below keeps or deletes it, so it blocks nothing here.
        deleted, counts, perms_needed, _protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed, []

    def delete_model(self, request, obj: User) -> None:
        # The erasure of the privacy rules, never a plain cascade.
        erasure.user_erase(user=obj)

    def delete_queryset(self, request, queryset) -> None:
        for user in queryset:
            erasure.user_erase(user=user)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")  # the role column

    def save_model(self, request, obj: User, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            services.user_set_role(user=obj, role=form.cleaned_data["role"])

    def save_related(self, request, form, formsets, change: bool) -> None:
        # After the groups are saved from the form: a changed role wins over them.
        super().save_related(request, form, formsets, change)
        if change and "role" in form.changed_data and form.cleaned_data["role"]:
            services.user_set_role(user=form.instance, role=form.cleaned_data["role"])

    @admin.display(description=_("Role"))
    def role(self, obj: User) -> str:
        role = current_role(obj)
        return str(role.label).split(":")[0].split(" (")[0] if role is not None else _("Staff, no role")

    @admin.display(description=_("Preferences"))
    def preferences_pretty(self, obj: User) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.preferences, indent=2, ensure_ascii=False))

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser
