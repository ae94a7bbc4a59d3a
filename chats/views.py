from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.tokens import BearerAuthentication
from aicore.client import drain
from aicore.orchestrator import release_db_connection
from tutor_platform.api import ID_PATTERN, GenericViewSet
from tutor_platform.schema import (
    NOT_FOUND,
    QUOTA_OR_THROTTLED,
    THROTTLED,
    UNAUTHORIZED,
    VALIDATION_ERROR,
    error,
)
from usage import services as usage

from . import followers, idempotency, live, selectors, services, streaming
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
    ReplyRequestSerializer,
    ReplyResultSerializer,
    ResumeQuerySerializer,
    SendMessageSerializer,
    SendResultSerializer,
    StreamDeltaSerializer,
    StreamErrorSerializer,
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


def _reply_responses(conflict: OpenApiResponse) -> dict:
    """/reply/ and /regenerate/: the reply as JSON or a stream, or why not."""
    return {
        201: ReplyResultSerializer,
        (200, streaming.EVENT_STREAM): _STREAM,
        400: VALIDATION_ERROR,
        **_ERRORS,
        429: QUOTA_OR_THROTTLED,
        409: conflict,
        422: error("The Idempotency-Key was used with another request.", "idempotency_key_reused"),
        **_AI_ERRORS,
    }


# The events of a stream, each a named schema: `user_message` and
# `assistant_message` carry a Message, `delta` a StreamDelta, `error` a StreamError.
STREAM_EVENT = PolymorphicProxySerializer(
    component_name="StreamEvent",
    serializers=[MessageSerializer, StreamDeltaSerializer, StreamErrorSerializer],
    resource_type_field_name=None,
)
_STREAM_EVENTS = (
    "With `Accept: text/event-stream`: server-sent events, each `data:` one line of JSON, after "
    "`retry: 3000`. `event: user_message` (sends only) — the saved user message (`Message`); "
    "`event: delta` — `StreamDelta` (`id:` the characters sent so far), zero or more; then "
    "`event: assistant_message` — the saved reply (`Message`, its content the deltas joined) "
    "or `event: error` — `StreamError`. Comment lines (`: keep-alive`) when nothing else was sent "
    "for 15 s. Closing the connection does not stop the reply: it is saved, and `GET .../stream/` "
    "re-attaches."
)
_STREAM = OpenApiResponse(STREAM_EVENT, description=_STREAM_EVENTS)

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
    extra_query_params = {"list": {"tutor"}, "messages": {"limit", "before_id"}, "stream": {"last_event_id"}}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    content_negotiation_class = streaming.StreamOrJSON

    def get_authenticators(self) -> list:
        if self.detail:  # the user is loaded with the chat, in `initial`
            return [BearerAuthentication(user_loaded_by_view=True)]
        return super().get_authenticators()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """On a chat's own URL, loads the chat and its owner in one query
        once the token is checked, and only then authenticates the user
        (BearerAuthentication): a deleted, deactivated or signed-out
        user gets simplejwt's 401 before the chat is used, and another
        user's chat (or none) is 404."""
        super().initial(request, *args, **kwargs)
        if not self.detail or getattr(self, request.method.lower(), None) is None:
            return  # a list, or a method the view lacks (405)
        token = request.auth
        chat = selectors.owned_chat(
            chat_id=int(kwargs["pk"]), user_id=request.user.pk, for_reply=self._asks_the_tutor()
        )
        request.user = request.successful_authenticator.verify(token, chat.user if chat else None)
        if chat is None:
            raise Http404
        self.chat = chat

    def get_queryset(self) -> QuerySet[Chat]:
        query = ChatListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.chat_list(user=self.request.user, tutor_id=query.validated_data.get("tutor"))

    def get_object(self) -> Chat:
        return self.chat

    def _asks_the_tutor(self) -> bool:
        return self.request.method == "POST" and self.action in ("messages", "reply", "regenerate")

    def get_throttles(self) -> list[BaseThrottle]:
        throttles = super().get_throttles()
        if self._asks_the_tutor():
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
            (200, streaming.EVENT_STREAM): _STREAM,
            400: VALIDATION_ERROR,
            **_ERRORS,
            429: QUOTA_OR_THROTTLED,
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

    def _send(self, request: Request, chat: Chat) -> HttpResponseBase:
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = _idempotency_key(request)
        digest = idempotency.fingerprint(chat=chat.pk, **data)
        if streaming.wants_stream(request):
            return self._send_stream(request, chat, data, key, digest)

        def send(claim: idempotency.Claim) -> idempotency.StoredResponse:
            try:
                if claim.user_message is None:
                    result = services.message_send(
                        chat=chat, request_id=request.request_id, on_saved=claim.bind, **data
                    )
                else:
                    result = services.message_send_again(
                        chat=chat, user_message=claim.user_message, request_id=request.request_id
                    )
            except services.ReplyFailed as failure:
                return _failure_response(failure)
            return idempotency.StoredResponse(status.HTTP_201_CREATED, SendResultSerializer(result).data)

        outcome = idempotency.run_once(user=request.user, key=key, digest=digest, call=send)
        return Response(outcome.body, status=outcome.status, headers=outcome.headers)

    def _send_stream(
        self, request: Request, chat: Chat, data: dict, key: str | None, digest: str
    ) -> HttpResponseBase:
        """The send as server-sent events; refusals before the stream are JSON."""
        claim = idempotency.claim(user=request.user, key=key, digest=digest)
        if isinstance(claim, idempotency.StoredResponse):
            return streaming.replay(claim.body)
        try:
            user_message = claim.user_message
            if user_message is None:
                user_message, reservation = services.message_post(chat=chat, on_saved=claim.bind, **data)
            else:  # a retried key: its message may have got its reply meanwhile
                answered = services.message_answered(chat=chat, user_message=user_message)
                if answered is not None:
                    body = SendResultSerializer(
                        {"user_message": user_message, "assistant_message": answered}
                    ).data
                    claim.finish(idempotency.StoredResponse(status.HTTP_201_CREATED, body))
                    return streaming.replay(body)
                reservation = usage.reserve(request.user)
        except BaseException:
            claim.finish(None)
            raise
        events = services.reply_events(
            chat=chat, user_message=user_message, request_id=request.request_id, reservation=reservation
        )

        def on_end(reply: Message | None) -> None:
            result = {"user_message": user_message, "assistant_message": reply}
            claim.finish(
                idempotency.StoredResponse(status.HTTP_201_CREATED, SendResultSerializer(result).data)
                if reply is not None
                else None
            )

        return streaming.reply_stream(user_message=user_message, events=events, announce=True, on_end=on_end)

    @extend_schema(
        tags=["messages"],
        request=ReplyRequestSerializer,
        parameters=[_IDEMPOTENCY_KEY],
        responses=_reply_responses(
            error(
                "The message already has its reply (or is not a user message), the tutor was "
                "deactivated, the chat was cleared while the tutor answered, or the same "
                "Idempotency-Key is still running.",
                "nothing_to_reply",
                "tutor_unavailable",
                "reply_discarded",
                "idempotency_key_in_use",
            )
        ),
        description=(
            "Generates the missing reply to a user message (the retry after a failure): the one named by "
            "`message`, by default the chat's latest user message."
        ),
    )
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str) -> HttpResponseBase:
        chat = self.get_object()
        body = ReplyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message_id = body.validated_data.get("message")
        return self._answer(
            request,
            chat,
            lambda: services.message_awaiting_reply(chat=chat, message_id=message_id),
            digest=idempotency.fingerprint(chat=chat.pk, action="reply", message=message_id),
            variant=False,
        )

    @extend_schema(
        tags=["messages"],
        request=None,
        parameters=[_IDEMPOTENCY_KEY],
        responses=_reply_responses(
            error(
                "The chat's last user message has no reply yet (use /reply/), the tutor was "
                "deactivated, the chat was cleared while the tutor answered, or the same "
                "Idempotency-Key is still running.",
                "nothing_to_regenerate",
                "tutor_unavailable",
                "reply_discarded",
                "idempotency_key_in_use",
            )
        ),
        description=(
            "Asks the tutor again for the reply to the chat's last user message. The new reply becomes the "
            "current variant; the earlier ones are kept (see `variants/` and `select/`)."
        ),
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str) -> HttpResponseBase:
        chat = self.get_object()
        return self._answer(
            request,
            chat,
            lambda: services.message_regenerate_target(chat=chat),
            digest=idempotency.fingerprint(chat=chat.pk, action="regenerate"),
            variant=True,
        )

    def _answer(
        self,
        request: Request,
        chat: Chat,
        target: Callable[[], Message],
        *,
        digest: str,
        variant: bool,
    ) -> HttpResponseBase:
        """The reply to the user message `target()` names, as a stream or as
        JSON (/reply/ and /regenerate/), once per Idempotency-Key: a repeat
        replays the stored reply, even once `target()` would refuse."""
        stream = streaming.wants_stream(request)
        claim = idempotency.claim(user=request.user, key=_idempotency_key(request), digest=digest)
        if isinstance(claim, idempotency.StoredResponse):
            if stream:
                return streaming.replay(claim.body)
            return Response(claim.body, status=claim.status, headers=claim.headers)
        try:
            user_message = target()
            claim.bind(user_message)
            reservation = usage.reserve(request.user)
        except BaseException:
            claim.finish(None)
            raise
        events = services.reply_events(
            chat=chat,
            user_message=user_message,
            request_id=request.request_id,
            reservation=reservation,
            stream=stream,
            variant=variant,
        )

        def stored(reply: Message) -> idempotency.StoredResponse:
            body = ReplyResultSerializer({"assistant_message": reply}).data
            return idempotency.StoredResponse(status.HTTP_201_CREATED, body)

        if stream:
            return streaming.reply_stream(
                user_message=user_message,
                events=events,
                announce=False,
                on_end=lambda reply: claim.finish(stored(reply) if reply is not None else None),
            )
        try:
            assistant_message = drain(events)
        except services.ReplyFailed as failure:
            claim.finish(None)
            outcome = _failure_response(failure)
            return Response(outcome.body, status=outcome.status, headers=outcome.headers)
        except BaseException:
            claim.finish(None)
            raise
        outcome = stored(assistant_message)
        claim.finish(outcome)
        return Response(outcome.body, status=outcome.status)

    @extend_schema(
        tags=["messages"],
        responses={200: MessageSerializer(many=True), 400: VALIDATION_ERROR, **_ERRORS},
        description="Every reply answering the same user message as this one, oldest first.",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=rf"messages/(?P<message_id>{ID_PATTERN})/variants",
        pagination_class=None,  # every variant, a plain array
    )
    def variants(self, request: Request, pk: str, message_id: str) -> Response:
        replies = selectors.variants_of(chat=self.get_object(), message_id=int(message_id))
        return Response(MessageSerializer(replies, many=True).data)

    @extend_schema(
        tags=["messages"],
        request=None,
        responses={200: MessageSerializer, 400: VALIDATION_ERROR, **_ERRORS},
        description=(
            "Makes this reply the current variant: message pages show it and the history sent to the "
            "tutor uses it."
        ),
    )
    @action(detail=True, methods=["post"], url_path=rf"messages/(?P<message_id>{ID_PATTERN})/select")
    def select(self, request: Request, pk: str, message_id: str) -> Response:
        chat = self.get_object()
        message = services.message_select(chat=chat, message_id=int(message_id))
        selectors.annotate_messages([message], chat_id=chat.pk)
        return Response(MessageSerializer(message).data)

    @extend_schema(
        tags=["messages"],
        parameters=[
            OpenApiParameter(
                "last_event_id",
                OpenApiTypes.INT,
                description="Resume after this many characters of the reply (the last `delta`'s `id`).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="As `last_event_id`, for clients that resume with the SSE header.",
            ),
        ],
        responses={
            (200, streaming.EVENT_STREAM): OpenApiResponse(
                STREAM_EVENT,
                description=(
                    "The reply being generated, re-attached: one `delta` with everything so far (after "
                    "`Last-Event-ID` characters when given), then the live `delta`s and "
                    "`assistant_message` or `error` (see the send's stream)."
                ),
            ),
            204: OpenApiResponse(description="No reply is being generated in this chat."),
            400: VALIDATION_ERROR,
            **_ERRORS,
            429: error(
                "At most 2 re-attached streams per chat and 5 per student are open at once, or the "
                "request budget is spent.",
                "too_many_streams",
                "throttled",
            ),
        },
        description=(
            "Re-attaches to the reply being generated in the chat (after a closed tab, a refresh or a "
            "dropped connection)."
        ),
    )
    @action(detail=True, methods=["get"], url_path="stream")
    def stream(self, request: Request, pk: str) -> HttpResponseBase:
        chat = self.get_object()
        resume = request.query_params.get("last_event_id", request.headers.get("Last-Event-ID"))
        query = ResumeQuerySerializer(data={} if resume is None else {"last_event_id": resume})
        query.is_valid(raise_exception=True)
        if not live.in_progress(chat.pk):
            return Response(status=status.HTTP_204_NO_CONTENT)
        lease = followers.take(chat_id=chat.pk, user_id=request.user.pk)
        release_db_connection()  # following holds no connection while it polls
        return streaming.EventStream(
            streaming.follow(chat.pk, after=query.validated_data["last_event_id"], lease=lease),
            on_close=lease.release,
        )


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= idempotency.KEY_MAX_LENGTH:
        raise ValidationError({"Idempotency-Key": [f"Must be 1 to {idempotency.KEY_MAX_LENGTH} characters."]})
    return key


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
