"""The staff roles and exactly the permissions each needs in the admin."""

from django.db import models

CONTENT_EDITORS = "Content editors"
ML_TEAM = "ML team"


class Role(models.TextChoices):
    """What the admin's "add user" form offers; groups and flags follow from it."""

    STUDENT = "student", "Student (no admin access)"
    CONTENT_EDITOR = "content_editor", "Content editor: courses, tutors and prompts"
    ML_TEAM = "ml_team", "ML team: feedback triage and the ML API"
    SUPERUSER = "superuser", "Superuser: everything, including users"


ROLE_GROUPS = {Role.CONTENT_EDITOR: CONTENT_EDITORS, Role.ML_TEAM: ML_TEAM}

ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    CONTENT_EDITORS: {
        "tutoring.course": ["add", "change", "view"],
        "tutoring.tutor": ["add", "change", "view"],
    },
    ML_TEAM: {
        # In the admin only `processed` is editable (FeedbackAdmin).
        "feedback.feedback": ["view", "change"],
        "tutoring.tutor": ["view"],
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
            wanted += [
                permission_model.objects.get(content_type__app_label=app_label, codename=f"{action}_{model}")
                for action in actions
            ]
        group.permissions.set(wanted)
