from typing import Any

from django.http import Http404
from django.http.response import HttpResponseBase
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.tokens import BearerAuthentication
from tutor_platform.api import ID_PATTERN, GenericViewSet
from tutor_platform.connections import release_db_connection

from . import schema, selectors, services
from .models import Chat
from .replies import flow, followers, idempotency, live, streaming
from .serializers import (
    ChatCreateSerializer,
    ChatListQuerySerializer,
    ChatSerializer,
    ChatUpdateSerializer,
    MessagePageQuerySerializer,
    MessagePageSerializer,
    MessageSerializer,
    ReplyRequestSerializer,
    ResumeQuerySerializer,
    SendMessageSerializer,
)
from .throttles import AISendThrottle


@schema.CHATS
class ChatViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    GenericViewSet,
):
    """The user's own chats. Another user's chat answers 404 everywhere."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "list": "List my chats",
        "create": "Start a chat",
        "retrieve": "Get a chat",
        "partial_update": "Rename a chat",
        "destroy": "Delete a chat",
        "messages:GET": "Page through a chat's messages",
        "messages:POST": "Send a message and get the tutor's reply",
        "messages:DELETE": "Clear a chat's history",
        "reply": "Retry the reply to a user message",
        "regenerate": "Ask again for the last reply (a new variant)",
        "variants": "List a reply's variants",
        "select": "Choose which variant of a reply the chat keeps",
        "stream": "Re-attach to the reply being generated",
    }

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

    def get_queryset(self) -> selectors.ChatPages:  # type: ignore[override]
        query = ChatListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.ChatPages(user_id=self.request.user.pk, tutor_id=query.validated_data.get("tutor"))

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
        serializer = ChatUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        chat = services.chat_rename(chat=self.get_object(), title=serializer.validated_data["title"])
        return Response(ChatSerializer(chat).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.chat_delete(chat=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @schema.MESSAGES
    @action(detail=True, methods=["get", "post", "delete"])
    def messages(self, request: Request, pk: str) -> HttpResponseBase:
        chat = self.get_object()
        if request.method == "GET":
            query = MessagePageQuerySerializer(data=request.query_params)
            query.is_valid(raise_exception=True)
            page = selectors.message_page(chat=chat, **query.validated_data)
            return Response(MessagePageSerializer(page).data)
        if request.method == "DELETE":
            services.chat_clear_history(chat=chat)
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = SendMessageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._ask(flow.Kind.SEND, **body.validated_data)

    @schema.REPLY
    @action(detail=True, methods=["post"])
    def reply(self, request: Request, pk: str) -> HttpResponseBase:
        body = ReplyRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._ask(flow.Kind.REPLY, message_id=body.validated_data.get("message"))

    @schema.REGENERATE
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str) -> HttpResponseBase:
        return self._ask(flow.Kind.REGENERATE)

    def _ask(self, kind: flow.Kind, **asked: Any) -> HttpResponseBase:
        """Asks the tutor (chats.replies.flow); JSON or a stream as `Accept` says."""
        question = flow.Question(
            kind=kind,
            chat=self.get_object(),
            request_id=self.request.request_id,
            idempotency_key=_idempotency_key(self.request),
            **asked,
        )
        return flow.answer(question, stream=streaming.wants_stream(self.request))

    @schema.VARIANTS
    @action(
        detail=True,
        methods=["get"],
        url_path=rf"messages/(?P<message_id>{ID_PATTERN})/variants",
        pagination_class=None,  # every variant, a plain array
    )
    def variants(self, request: Request, pk: str, message_id: str) -> Response:
        replies = selectors.variants_of(chat=self.get_object(), message_id=int(message_id))
        return Response(MessageSerializer(replies, many=True).data)

    @schema.SELECT
    @action(detail=True, methods=["post"], url_path=rf"messages/(?P<message_id>{ID_PATTERN})/select")
    def select(self, request: Request, pk: str, message_id: str) -> Response:
        chat = self.get_object()
        message = services.message_select(chat=chat, message_id=int(message_id))
        selectors.annotate_messages([message], chat_id=chat.pk)
        return Response(MessageSerializer(message).data)

    @schema.STREAM
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
