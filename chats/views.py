from collections.abc import Callable

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from tutor_platform.api import GenericViewSet
from tutor_platform.schema import NOT_FOUND, THROTTLED, UNAUTHORIZED, VALIDATION_ERROR, error

from . import idempotency, selectors, services
from .models import Chat, Message
from .serializers import (
    AICoreErrorSerializer,
    ChatCreateSerializer,
    ChatListQuerySerializer,
    ChatSerializer,
    ChatUpdateSerializer,
    MessagePageQuerySerializer,
    MessagePageSerializer,
    MessageSerializer,
    ReplyResultSerializer,
    SendMessageSerializer,
    SendResultSerializer,
)
from .throttles import AISendThrottle

_ERRORS = {401: UNAUTHORIZED, 404: NOT_FOUND, 429: THROTTLED}
_AI_ERRORS = {
    500: OpenApiResponse(
        AICoreErrorSerializer,
        description="`server_error` after the user message was saved; the user message is in the body.",
    ),
    502: OpenApiResponse(
        AICoreErrorSerializer, description="`ai_core_bad_response`; the user message is saved."
    ),
    503: OpenApiResponse(
        AICoreErrorSerializer,
        description=(
            "`ai_core_unavailable` or `database_unavailable` (with `Retry-After`); the user message is saved."
        ),
    ),
    504: OpenApiResponse(AICoreErrorSerializer, description="`ai_core_timeout`; the user message is saved."),
}
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "At most 255 characters. A repeat by the same user within 24 h returns the first "
        "successful result without calling AI-Core again; a repeat after a failure answers the "
        "user message the first attempt saved, never saving a second copy."
    ),
)


@extend_schema_view(
    list=extend_schema(
        tags=["chats"],
        parameters=[OpenApiParameter("tutor", int, description="Only chats with this tutor.")],
        responses={200: ChatSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS},
    ),
    create=extend_schema(
        tags=["chats"],
        request=ChatCreateSerializer,
        responses={201: ChatSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    ),
    retrieve=extend_schema(tags=["chats"], responses={200: ChatSerializer, **_ERRORS}),
    partial_update=extend_schema(
        tags=["chats"],
        request=ChatUpdateSerializer,
        responses={200: ChatSerializer, 400: VALIDATION_ERROR, **_ERRORS},
    ),
    destroy=extend_schema(
        tags=["chats"],
        responses={204: OpenApiResponse(description="Deleted; feedback on its messages is kept."), **_ERRORS},
    ),
)
class ChatViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    GenericViewSet,
):
    """The user's own chats. Another user's chat answers 404 everywhere."""

    serializer_class = ChatSerializer
    filter_backends: list = []
    extra_query_params = {"list": {"tutor"}, "messages": {"limit", "before_id"}}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Chat]:
        tutor_id = None
        if self.action == "list":
            query = ChatListQuerySerializer(data=self.request.query_params)
            query.is_valid(raise_exception=True)
            tutor_id = query.validated_data.get("tutor")
        return selectors.chat_list(user=self.request.user, tutor_id=tutor_id)

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = super().get_throttles()
        if self.request.method == "POST" and self.action in ("messages", "reply"):
            throttles.append(AISendThrottle())
        return throttles

    def create(self, request: Request) -> Response:
        serializer = ChatCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat = services.chat_create(user=request.user, **serializer.validated_data)
        return Response(ChatSerializer(chat).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        chat = self.get_object()
        serializer = ChatUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat = services.chat_rename(chat=chat, title=serializer.validated_data["title"])
        return Response(ChatSerializer(chat).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.chat_delete(chat=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        tags=["messages"],
        parameters=[MessagePageQuerySerializer],
        responses={200: MessagePageSerializer, 400: VALIDATION_ERROR, **_ERRORS},
        description="Keyset pagination: the newest `limit` messages with `id < before_id`, oldest first.",
    )
    @extend_schema(
        methods=["POST"],
        tags=["messages"],
        request=SendMessageSerializer,
        parameters=[_IDEMPOTENCY_KEY],
        responses={
            201: SendResultSerializer,
            400: VALIDATION_ERROR,
            **_ERRORS,
            409: error(
                "The tutor was deactivated, the same Idempotency-Key is still running, or the chat "
                "was cleared while the tutor answered.",
                "tutor_unavailable",
                "idempotency_key_in_use",
                "reply_discarded",
                "nothing_to_reply",
            ),
            422: error("The Idempotency-Key was used with another body.", "idempotency_key_reused"),
            **_AI_ERRORS,
        },
        description="Saves the message, asks the tutor, saves and returns the reply.",
    )
    @extend_schema(
        methods=["DELETE"],
        tags=["messages"],
        responses={204: OpenApiResponse(description="History cleared; the chat stays."), **_ERRORS},
    )
    @action(detail=True, methods=["get", "post", "delete"])
    def messages(self, request: Request, pk: str) -> Response:
        chat = self.get_object()
        if request.method == "GET":
            return self._message_page(request, chat)
        if request.method == "DELETE":
            services.chat_clear_history(chat=chat)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._send(request, chat)

    def _message_page(self, request: Request, chat: Chat) -> Response:
        query = MessagePageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = selectors.message_page(chat=chat, **query.validated_data)
        return Response(MessagePageSerializer(page).data)

    def _send(self, request: Request, chat: Chat) -> Response:
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = request.headers.get("Idempotency-Key")

        def send(saved: Message | None, bind: Callable[[Message], None]) -> idempotency.StoredResponse:
            try:
                if saved is None:
                    result = services.message_send(
                        chat=chat, request_id=request.request_id, on_saved=bind, **data
                    )
                else:
                    result = services.message_send_again(
                        chat=chat, user_message=saved, request_id=request.request_id
                    )
            except services.ReplyFailed as failure:
                return _failure_response(failure)
            return idempotency.StoredResponse(status.HTTP_201_CREATED, SendResultSerializer(result).data)

        if key is None:
            outcome = send(None, lambda _message: None)
        else:
            if not 0 < len(key) <= idempotency.KEY_MAX_LENGTH:
                raise ValidationError(
                    {"Idempotency-Key": [f"Must be 1 to {idempotency.KEY_MAX_LENGTH} characters."]}
                )
            digest = idempotency.fingerprint(chat=chat.pk, **data)
            outcome = idempotency.run_once(user=request.user, key=key, digest=digest, call=send)
        return Response(outcome.body, status=outcome.status, headers=outcome.headers)

    @extend_schema(
        tags=["messages"],
        request=None,
        responses={
            201: ReplyResultSerializer,
            **_ERRORS,
            409: error(
                "The last message already has its reply, the tutor was deactivated, or the chat was "
                "cleared while the tutor answered.",
                "nothing_to_reply",
                "tutor_unavailable",
                "reply_discarded",
            ),
            **_AI_ERRORS,
        },
        description=(
            "Generates the reply to the chat's last message when it has none yet (the retry after a failure)."
        ),
    )
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str) -> Response:
        chat = self.get_object()
        try:
            assistant_message = services.message_reply(chat=chat, request_id=request.request_id)
        except services.ReplyFailed as failure:
            outcome = _failure_response(failure)
            return Response(outcome.body, status=outcome.status, headers=outcome.headers)
        return Response(
            ReplyResultSerializer({"assistant_message": assistant_message}).data,
            status=status.HTTP_201_CREATED,
        )


def _failure_response(failure: services.ReplyFailed) -> idempotency.StoredResponse:
    headers = {}
    if failure.retry_after is not None:
        headers["Retry-After"] = str(failure.retry_after)
    body = {
        "detail": failure.detail,
        "code": failure.detail.code,
        "user_message": MessageSerializer(failure.user_message).data,
    }
    return idempotency.StoredResponse(failure.status_code, body, headers)
