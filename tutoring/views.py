from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.tokens import CatalogueAuthentication
from tutor_platform.api import ReadOnlyModelViewSet
from tutor_platform.filters import OrderingFilter
from tutor_platform.schema import NOT_FOUND, THROTTLED, VALIDATION_ERROR

from . import selectors
from .catalogue import cached_response
from .filters import TutorFilter
from .models import Course, Tutor
from .serializers import CourseSerializer, StaffTutorSerializer, TutorSerializer

# No 401: a bad or expired token reads the catalogue as anonymous.
_LIST_ERRORS = {404: NOT_FOUND, 429: THROTTLED}


class CachedCatalogueMixin:
    """Lists and details from the cache while the catalogue is unchanged
    (catalogue.py); a token that says its user is not staff is believed
    without loading the user (accounts.tokens)."""

    authentication_classes = [CatalogueAuthentication]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return cached_response(
            request, lambda: super(CachedCatalogueMixin, self).list(request, *args, **kwargs)
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return cached_response(
            request, lambda: super(CachedCatalogueMixin, self).retrieve(request, *args, **kwargs)
        )


@extend_schema_view(
    list=extend_schema(
        tags=["catalogue"],
        auth=[],
        responses={200: CourseSerializer(many=True), 400: VALIDATION_ERROR, **_LIST_ERRORS},
    ),
    retrieve=extend_schema(tags=["catalogue"], auth=[], responses={200: CourseSerializer, **_LIST_ERRORS}),
)
class CourseViewSet(CachedCatalogueMixin, ReadOnlyModelViewSet):
    """Active courses. Readable without a token."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List active courses",
        "retrieve": "Get a course",
    }

    permission_classes = [permissions.AllowAny]
    serializer_class = CourseSerializer

    def get_queryset(self) -> QuerySet[Course]:
        return selectors.course_list()


@extend_schema_view(
    list=extend_schema(
        tags=["catalogue"],
        auth=[],
        responses={200: StaffTutorSerializer(many=True), 400: VALIDATION_ERROR, **_LIST_ERRORS},
    ),
    retrieve=extend_schema(
        tags=["catalogue"], auth=[], responses={200: StaffTutorSerializer, **_LIST_ERRORS}
    ),
)
class TutorViewSet(CachedCatalogueMixin, ReadOnlyModelViewSet):
    """Active tutors. Readable without a token; staff also see the internal fields
    (`system_prompt`, `model_id`, `knowledge_base_id`)."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List active tutors",
        "retrieve": "Get a tutor",
    }

    permission_classes = [permissions.AllowAny]
    filter_backends = [
        *ReadOnlyModelViewSet.filter_backends,
        filters.SearchFilter,
        OrderingFilter,
    ]
    filterset_class = TutorFilter
    search_fields = ["name", "description"]
    ordering_fields = ["rating", "name"]
    ordering = ["name", "id"]

    def get_queryset(self) -> QuerySet[Tutor]:
        return selectors.tutor_list(with_content=self._for_staff())

    def get_serializer_class(self) -> type[BaseSerializer]:
        return StaffTutorSerializer if self._for_staff() else TutorSerializer

    def _for_staff(self) -> bool:
        user = self.request.user
        return user.is_authenticated and user.is_staff
