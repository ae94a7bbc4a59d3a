from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from aicore.orchestrator import ai_core_status
from tutor_platform.api import APIView

HealthSerializer = inline_serializer(
    name="Health",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "error"]),
        "database": serializers.ChoiceField(choices=["ok", "error"]),
        "ai_core": serializers.ChoiceField(choices=["ok", "stub", "unavailable"]),
    },
)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return "error"
    return "ok"


class HealthView(APIView):
    """Liveness for load balancers: 503 only when the database is unreachable."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_classes = []

    @extend_schema(tags=["health"], responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        database = database_status()
        body = {
            "status": "ok" if database == "ok" else "error",
            "database": database,
            "ai_core": ai_core_status(),
        }
        return Response(
            body, status=status.HTTP_200_OK if database == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        )
