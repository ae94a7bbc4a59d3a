"""The staff roles and exactly the permissions each needs in the admin."""

from django.db import models
from django.utils.translation import gettext_lazy as _

CONTENT_EDITORS = "Content editors"
ML_TEAM = "ML team"
SAFETY_REVIEWERS = "Safety reviewers"


class Role(models.TextChoices):
    """What the admin's "add user" form offers; groups and flags follow from it."""

    STUDENT = "student", _("Student (no admin access)")
    CONTENT_EDITOR = "content_editor", _("Content editor: courses, tutors and prompts")
    ML_TEAM = "ml_team", _("ML team: feedback triage and the ML API")
    SAFETY_REVIEWER = "safety_reviewer", _("Safety reviewer: the review queue and the term lists")
    SUPERUSER = "superuser", _("Superuser: everything, including users")


ROLE_GROUPS = {
    Role.CONTENT_EDITOR: CONTENT_EDITORS,
    Role.ML_TEAM: ML_TEAM,
    Role.SAFETY_REVIEWER: SAFETY_REVIEWERS,
}


def role_of(*, is_superuser: bool, is_staff: bool, group_names: set[str]) -> Role | None:
    """The role the flags and groups amount to; None for staff outside every role's group."""
    if is_superuser:
        return Role.SUPERUSER
    if not is_staff:
        return Role.STUDENT
    return next((role for role, group in ROLE_GROUPS.items() if group in group_names), None)


ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    CONTENT_EDITORS: {
        "tutoring.course": ["add", "change", "view"],
        "tutoring.tutor": ["add", "change", "view"],
        # Start, stop and promote are changes (tutoring.admin_experiments); a draft can be deleted.
        "tutoring.experiment": ["add", "change", "delete", "view"],
        "usage.usagedashboard": ["view"],
    },
    ML_TEAM: {
        "usage.usagedashboard": ["view"],
        # In the admin only `processed` is editable (FeedbackAdmin).
        "feedback.feedback": ["view", "change"],
        "tutoring.tutor": ["view"],
        "tutoring.experiment": ["view"],
        "chats.chat": ["view"],
        "chats.message": ["view"],
    },
    SAFETY_REVIEWERS: {
        # In the admin only the review is editable (safety.admin.FlagAdmin); nothing is deleted.
        "safety.flag": ["view", "change"],
        "safety.term": ["add", "change", "delete", "view"],
        "safety.policy": ["change", "view"],
        "usage.usagedashboard": ["view"],
        "chats.chat": ["view"],
        "chats.message": ["view"],
    },
}


def sync_roles(group_model, permission_model) -> None:
    """Creates the groups and gives each exactly its permissions.

    Takes the models as arguments so the data migration can pass its
    historical ones.
    """
    for name, model_actions in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = []
        for model_label, actions in model_actions.items():
            app_label, model = model_label.split(".")
            # A migration that runs before the model's own gets what exists so
            # far; the model's app syncs again once it exists.
            wanted += permission_model.objects.filter(
                content_type__app_label=app_label, codename__in=[f"{action}_{model}" for action in actions]
            )
        group.permissions.set(wanted)


def sync_roles_in_migration(apps) -> None:
    """For data migrations: creates the permissions of the models migrated so
    far (Django makes them only after all migrations), then syncs the groups."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
