from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

# The one permission behind every ML route, API and admin alike: the `ML team`
# group has it (accounts.roles), superusers have every permission, and content
# editors, although staff, do not.
ML_PERMISSION = "feedback.view_feedback"


def is_ml_member(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(ML_PERMISSION))


class IsMLTeam(BasePermission):
    """Members of the `ML team` group and superusers."""

    message = "Only the ML team may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_ml_member(request.user)


class CanViewTutors(BasePermission):
    """Whoever may see tutors in the admin: content editors, the ML team, superusers."""

    message = "Only content editors and the ML team may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_active and user.has_perm("tutoring.view_tutor")
        )


class CanViewExperiments(BasePermission):
    """Content editors (who run experiments), the ML team, superusers."""

    message = "Only content editors and the ML team may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_active and user.has_perm("tutoring.view_experiment")
        )
