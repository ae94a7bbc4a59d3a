from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tutor_platform.api import GenericViewSet
from tutor_platform.schema import NOT_FOUND, THROTTLED, UNAUTHORIZED, VALIDATION_ERROR

from . import services
from .models import Progress
from .serializers import ProgressAddSerializer, ProgressSerializer, ProgressSetSerializer

_ERRORS = {401: UNAUTHORIZED, 404: NOT_FOUND, 429: THROTTLED}


@extend_schema_view(
    list=extend_schema(
        tags=["progress"], responses={200: ProgressSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS}
    ),
    retrieve=extend_schema(
        tags=["progress"],
        responses={200: ProgressSerializer, **_ERRORS},
        description="Created with 0 minutes when absent. Unknown tutor: 404.",
    ),
    update=extend_schema(
        tags=["progress"],
        request=ProgressSetSerializer,
        responses={200: ProgressSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    ),
)
class ProgressViewSet(mixins.ListModelMixin, GenericViewSet):
    """The user's study minutes per tutor, addressed by tutor id."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List my study progress",
        "retrieve": "Get my progress with a tutor",
        "update": "Set my minutes with a tutor",
        "add": "Add minutes with a tutor",
    }

    serializer_class = ProgressSerializer
    filter_backends: list = []
    lookup_url_kwarg = "tutor_id"
    http_method_names = ["get", "put", "post", "head", "options"]

    def get_queryset(self) -> QuerySet[Progress]:
        return Progress.objects.filter(user=self.request.user).select_related("tutor")

    def retrieve(self, request: Request, tutor_id: str) -> Response:
        row = services.progress_get(user=request.user, tutor_id=int(tutor_id))
        return Response(ProgressSerializer(row).data)

    def update(self, request: Request, tutor_id: str) -> Response:
        serializer = ProgressSetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.progress_set(user=request.user, tutor_id=int(tutor_id), **serializer.validated_data)
        return Response(ProgressSerializer(row).data)

    @extend_schema(
        tags=["progress"],
        request=ProgressAddSerializer,
        responses={200: ProgressSerializer, 400: VALIDATION_ERROR, **_ERRORS},
        description="Adds minutes atomically; concurrent adds lose nothing.",
    )
    @action(detail=True, methods=["post"])
    def add(self, request: Request, tutor_id: str) -> Response:
        serializer = ProgressAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.progress_add(user=request.user, tutor_id=int(tutor_id), **serializer.validated_data)
        return Response(ProgressSerializer(row).data)
