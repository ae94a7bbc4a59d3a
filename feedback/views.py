from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from tutor_platform.api import APIView, GenericViewSet
from tutor_platform.schema import FORBIDDEN, NOT_FOUND, THROTTLED, UNAUTHORIZED, VALIDATION_ERROR
from tutoring.models import Experiment, Tutor

from . import selectors, services
from .experiments import experiment_stats
from .filters import ConsentRevocationFilter, ExperimentFilter, MLFeedbackFilter
from .models import Feedback
from .pairs import PairFilter, pair_count, pair_ids, pair_items
from .permissions import CanViewExperiments, CanViewTutors, IsMLTeam
from .serializers import (
    ConsentRevocationListSerializer,
    ConsentRevocationSerializer,
    ExperimentSerializer,
    FeedbackSerializer,
    FeedbackSubmitSerializer,
    MarkProcessedResultSerializer,
    MarkProcessedSerializer,
    MLFeedbackSerializer,
    PreferencePairQuerySerializer,
    PreferencePairSerializer,
    RevokeConsentResultSerializer,
    TutorVersionStatsSerializer,
)

_ERRORS = {401: UNAUTHORIZED, 404: NOT_FOUND, 429: THROTTLED}


@extend_schema_view(
    list=extend_schema(
        tags=["feedback"], responses={200: FeedbackSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS}
    ),
    retrieve=extend_schema(tags=["feedback"], responses={200: FeedbackSerializer, **_ERRORS}),
    create=extend_schema(
        tags=["feedback"],
        request=FeedbackSubmitSerializer,
        responses={
            201: OpenApiResponse(FeedbackSerializer, description="Created."),
            200: OpenApiResponse(FeedbackSerializer, description="Updated: the same (message, type) again."),
            400: VALIDATION_ERROR,
            **_ERRORS,
        },
        description=(
            "Rates an assistant message in one of your chats. One feedback per "
            "(message, feedback_type): posting again updates only the fields sent "
            "and, when something changed, puts it back in the ML queue."
        ),
    ),
    destroy=extend_schema(tags=["feedback"], responses={204: None, **_ERRORS}),
)
class FeedbackViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    GenericViewSet,
):
    """The user's own feedback."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List my feedback",
        "create": "Rate a reply",
        "retrieve": "Get a feedback item",
        "destroy": "Delete a feedback item",
        "revoke_consent": "Withdraw my consent to training",
    }

    serializer_class = FeedbackSerializer
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Feedback]:
        return selectors.feedback_list(user=self.request.user)

    def create(self, request: Request) -> Response:
        serializer = FeedbackSubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        result = services.feedback_submit(
            user=request.user,
            message_id=fields.pop("message"),
            feedback_type=fields.pop("feedback_type"),
            fields=fields,
        )
        return Response(
            FeedbackSerializer(result.feedback).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    def perform_destroy(self, instance: Feedback) -> None:
        services.feedback_delete(feedback=instance)

    @extend_schema(
        tags=["feedback"],
        request=None,
        responses={200: RevokeConsentResultSerializer, 401: UNAUTHORIZED, 429: THROTTLED},
        description=(
            "Withdraws your consent to training: `allow_training` becomes false on all "
            "your feedback and on your profile. Items the ML team already took are "
            "listed for them to purge."
        ),
    )
    @action(detail=False, methods=["post"], url_path="revoke-consent")
    def revoke_consent(self, request: Request) -> Response:
        updated = services.feedback_revoke_consent(user=request.user)
        return Response(RevokeConsentResultSerializer({"updated": updated}).data)


_ML_ERRORS = {401: UNAUTHORIZED, 403: FORBIDDEN, 404: NOT_FOUND, 429: THROTTLED}


@extend_schema_view(
    list=extend_schema(
        tags=["ml"],
        responses={200: MLFeedbackSerializer(many=True), 400: VALIDATION_ERROR, **_ML_ERRORS},
        description=(
            "Every user's feedback with its training context, oldest first. "
            "`processed` defaults to false (the queue still to process)."
        ),
    ),
)
class MLFeedbackViewSet(mixins.ListModelMixin, GenericViewSet):
    """The ML team's feedback queue (the `ML team` group and superusers)."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List feedback for training (ML team)",
        "mark_processed": "Mark feedback processed (ML team)",
    }

    permission_classes = [IsMLTeam]
    serializer_class = MLFeedbackSerializer
    filterset_class = MLFeedbackFilter

    def get_queryset(self) -> QuerySet[Feedback]:
        return selectors.ml_feedback_list()

    @extend_schema(
        tags=["ml"],
        request=MarkProcessedSerializer,
        responses={200: MarkProcessedResultSerializer, 400: VALIDATION_ERROR, **_ML_ERRORS},
        description="Idempotent: already processed items are left as they are and not counted.",
    )
    @action(detail=False, methods=["post"], url_path="mark-processed")
    def mark_processed(self, request: Request) -> Response:
        serializer = MarkProcessedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.feedback_mark_processed(ids=serializer.validated_data["ids"], by=request.user)
        return Response(MarkProcessedResultSerializer(result).data)


class ConsentRevocationsView(APIView):
    summaries = {
        "get": "List withdrawn feedback to purge (ML team)"
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    permission_classes = [IsMLTeam]
    extra_query_params = {None: {"since"}}

    @extend_schema(
        tags=["ml"],
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.DATETIME, description="Only revocations at or after this moment."
            )
        ],
        responses={200: ConsentRevocationListSerializer, 400: VALIDATION_ERROR, **_ML_ERRORS},
        description=(
            "Feedback you processed that may no longer be used: its consent was revoked "
            "or its author erased. Purge these ids from your data. Oldest first; poll "
            "with `since` set to the last `revoked_at` you saw (inclusive)."
        ),
    )
    def get(self, request: Request) -> Response:
        filterset = ConsentRevocationFilter(request.query_params, queryset=selectors.consent_revocations())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        return Response({"results": ConsentRevocationSerializer(filterset.qs, many=True).data})


class MLTutorViewSet(GenericViewSet):
    """Tutors as the ML team and staff see them: version history with statistics."""

    summaries = {
        "versions": "A tutor's versions with their statistics (ML team, staff)"
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    permission_classes = [CanViewTutors]
    pagination_class = None

    def get_queryset(self) -> QuerySet[Tutor]:
        return Tutor.objects.all()

    @extend_schema(
        tags=["ml"],
        responses={200: TutorVersionStatsSerializer(many=True), **_ML_ERRORS},
        description=(
            "Every version of the tutor, newest first, with the replies it produced and "
            "their ratings and reactions. For the ML team and staff."
        ),
    )
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        tutor = self.get_object()
        versions = list(tutor.versions.select_related("created_by").order_by("-number"))
        stats = selectors.tutor_version_stats(version_ids=[v.pk for v in versions])
        for version in versions:
            version.stats = stats[version.pk]
        return Response(TutorVersionStatsSerializer(versions, many=True).data)


class PairList:
    """The pairs as Django's paginator wants them: a count and slices."""

    def __init__(self, filters: PairFilter) -> None:
        self.filters = filters

    def count(self) -> int:
        return pair_count(self.filters)

    def __getitem__(self, page: slice) -> list[dict]:
        return pair_items(pair_ids(self.filters, offset=page.start, limit=page.stop - page.start))


@extend_schema_view(
    list=extend_schema(
        tags=["ml"],
        parameters=[PreferencePairQuerySerializer],
        responses={200: PreferencePairSerializer(many=True), 400: VALIDATION_ERROR, **_ML_ERRORS},
        description=(
            "Two answers to one prompt where the student preferred one, for preference training "
            "(DPO/RLHF). Only with consent: both ratings given with `allow_training`, or the "
            "student's standing consent for a selection."
        ),
    ),
)
class PreferencePairViewSet(GenericViewSet):
    summaries = {
        "list": "List preference pairs for training (ML team)"
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    permission_classes = [IsMLTeam]
    serializer_class = PreferencePairSerializer
    filter_backends: list = []
    extra_query_params = {"list": {"tutor", "tutor_version", "created_since"}}

    def list(self, request: Request) -> Response:
        query = PreferencePairQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        filters = PairFilter(
            tutor_id=data.get("tutor"),
            tutor_version=data.get("tutor_version"),
            created_since=data.get("created_since"),
        )
        page = self.paginate_queryset(PairList(filters))
        return self.get_paginated_response(PreferencePairSerializer(page, many=True).data)


_EXPERIMENT_FIGURES = (
    "Per arm: students, replies, `rating_avg` with its 95 % interval `rating_ci`, `detailed_count`, "
    "quick-reaction shares, `regenerate_rate`, `failure_rate`, latency percentiles and struggle "
    "shares (erased students and those who withdrew consent are left out); `events` are its state "
    "changes, who made them and when (null `by`: the guardrail)."
)


@extend_schema_view(
    list=extend_schema(
        tags=["ml"],
        responses={200: ExperimentSerializer(many=True), 400: VALIDATION_ERROR, **_ML_ERRORS},
        description="Experiments between tutor versions, newest first. " + _EXPERIMENT_FIGURES,
    ),
    retrieve=extend_schema(
        tags=["ml"],
        responses={200: ExperimentSerializer, **_ML_ERRORS},
        description="One experiment. " + _EXPERIMENT_FIGURES,
    ),
)
class ExperimentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """A/B tests between tutor versions with their statistics (ML team, content
    editors): a fixed number of queries whatever the number of replies."""

    summaries = {
        "list": "List experiments with their statistics (ML team, content editors)",
        "retrieve": "Get an experiment with its statistics (ML team, content editors)",
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    permission_classes = [CanViewExperiments]
    serializer_class = ExperimentSerializer
    filterset_class = ExperimentFilter

    def get_queryset(self) -> QuerySet[Experiment]:
        return (
            Experiment.objects.select_related("tutor")
            .prefetch_related("events__by")
            .order_by("-created_at", "-id")
        )

    def with_stats(self, experiments: list[Experiment]) -> list[Experiment]:
        stats = experiment_stats(experiment_ids=[experiment.pk for experiment in experiments])
        for experiment in experiments:
            experiment.stats = stats[experiment.pk]
        return experiments

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(self.with_stats(list(page)), many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(self.with_stats([self.get_object()])[0]).data)
