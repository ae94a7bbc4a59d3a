from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.roles import ML_TEAM as ML_TEAM_GROUP


def is_ml_member(user) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and (user.is_staff or user.groups.filter(name=ML_TEAM_GROUP).exists())
    )


class IsMLTeam(BasePermission):
    """Staff users and members of the `ML team` group."""

    message = "Only the ML team may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_ml_member(request.user)
