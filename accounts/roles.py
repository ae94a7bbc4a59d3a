"""The staff roles and exactly the permissions each needs in the admin."""

CONTENT_EDITORS = "Content editors"
ML_TEAM = "ML team"

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
