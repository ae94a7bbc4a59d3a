import logging

from django.core.cache import cache
from django.db import DatabaseError, connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from aicore import client as aicore
from tutor_platform.api import APIView

HealthSerializer = inline_serializer(
    name="Health",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "error"]),
        "database": serializers.ChoiceField(choices=["ok", "error"]),
        "ai_core": serializers.ChoiceField(choices=["ok", "stub", "unavailable"]),
        "providers": serializers.DictField(
            child=serializers.ChoiceField(choices=["ok", "unavailable"]),
            help_text="Each model server besides AI-Core (AI_PROVIDERS), by name; empty when there is none.",
        ),
        "cache": serializers.ChoiceField(
            choices=["ok", "unavailable"],
            help_text="Without the cache, throttles let requests through; the API keeps working.",
        ),
    },
)

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return "error"
    return "ok"


def cache_status() -> str:
    try:
        cache.set("health:probe", 1, 10)
    except Exception as exc:  # whichever error the cache backend raises
        logger.warning("Cache unavailable: %s", type(exc).__name__)
        return "unavailable"
    return "ok"


class HealthView(APIView):
    """Liveness for load balancers: 503 only when the database is unreachable
    (AI-Core or the cache being down degrades the service, it does not stop it)."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"get": "Health check"}

    permission_classes = [permissions.AllowAny]
    authentication_classes = []
    throttle_classes = []

    @extend_schema(tags=["health"], responses={200: HealthSerializer, 503: HealthSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        database = database_status()
        body = {
            "status": "ok" if database == "ok" else "error",
            "database": database,
            "ai_core": aicore.status(),
            "providers": aicore.provider_status(),
            "cache": cache_status(),
        }
        return Response(
            body, status=status.HTTP_200_OK if database == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        )
