"""`GET /api/v1/`: where a newcomer (or a client) starts, the API's entry points."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from tutor_platform.api import APIView

# Entry point -> URL name (paths, not absolute URLs: the Host header is the client's).
ENTRY_POINTS = {
    "register": "auth-register",
    "login": "auth-login",
    "refresh": "auth-refresh",
    "me": "auth-me",
    "courses": "course-list",
    "tutors": "tutor-list",
    "chats": "chat-list",
    "attachments": "attachment-list",
    "feedback": "feedback-list",
    "progress": "progress-list",
    "health": "health",
    "schema": "schema",
    "docs": "swagger-ui",
}

ApiRootSerializer = inline_serializer(
    name="ApiRoot",
    fields={name: serializers.CharField(help_text=f"The path of `{name}`.") for name in ENTRY_POINTS},
)


class ApiRootView(APIView):
    """The entry points, as paths; the schema (`schema`, browsable at `docs`) has every operation."""

    summaries = {"get": "List the API's entry points"}
    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []

    @extend_schema(tags=["api"], responses={200: ApiRootSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        return Response({name: reverse(url_name) for name, url_name in ENTRY_POINTS.items()})
