"""A student's whole session through the Python client generated from our
OpenAPI schema (openapi-python-client), with no workaround: no cast, no
`Any`, no hand-written request. `test_generated_client.py` generates the
client, type-checks this file with `mypy --strict` and runs it against a
live server, so a schema regression fails the suite.
"""

from tutor_client import AuthenticatedClient, Client
from tutor_client.api.auth import (
    auth_login_create,
    auth_me_retrieve,
    auth_refresh_create,
    auth_register_create,
)
from tutor_client.api.catalogue import tutors_list
from tutor_client.api.chats import chats_create, chats_list
from tutor_client.api.feedback import feedback_create
from tutor_client.api.messages import chats_messages_create, chats_messages_retrieve
from tutor_client.api.progress import progress_add_create
from tutor_client.models import (
    Chat,
    ChatCreateRequest,
    Feedback,
    FeedbackSubmitRequest,
    FeedbackTypeEnum,
    LoginRequest,
    MessagePage,
    PaginatedChatList,
    PaginatedTutorList,
    Profile,
    Progress,
    ProgressAddRequest,
    RefreshTokenRequest,
    RegisterRequest,
    RoleEnum,
    SendMessageRequest,
    SendResult,
    TokenPair,
)
from tutor_client.models.tutors_list_ordering import TutorsListOrdering


def run(base_url: str, email: str, password: str) -> str:
    """Registers, logs in, picks a tutor, chats, rates the reply, logs minutes.

    Returns the tutor's reply, for the caller to check.
    """
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    registered = auth_register_create.sync(
        client=anonymous, body=RegisterRequest(email=email, username="Иван_Петров", password=password)
    )
    assert isinstance(registered, Profile), registered

    tokens = auth_login_create.sync(client=anonymous, body=LoginRequest(email=email, password=password))
    assert isinstance(tokens, TokenPair), tokens
    student = AuthenticatedClient(base_url=base_url, token=tokens.access, raise_on_unexpected_status=True)
    me = auth_me_retrieve.sync(client=student)
    assert isinstance(me, Profile) and me.username == "Иван_Петров", me

    tutors = tutors_list.sync(client=anonymous, ordering=TutorsListOrdering.RATING_DESC)
    assert isinstance(tutors, PaginatedTutorList) and tutors.results, tutors
    tutor = tutors.results[0]
    rating: str = tutor.rating  # a decimal string, as the schema says

    chat = chats_create.sync(client=student, body=ChatCreateRequest(tutor=tutor.id))
    assert isinstance(chat, Chat) and chat.tutor.is_available, chat
    sent = chats_messages_create.sync(
        chat.id, client=student, body=SendMessageRequest(content="Что такое дробь?")
    )
    assert isinstance(sent, SendResult), sent
    reply = sent.assistant_message
    assert reply.role == RoleEnum.ASSISTANT
    tokens_used: int | None = (
        reply.metadata.tokens_used if isinstance(reply.metadata.tokens_used, int) else None
    )

    page = chats_messages_retrieve.sync(chat.id, client=student, limit=10)
    assert isinstance(page, MessagePage), page
    assert [message.id for message in page.results] == [sent.user_message.id, reply.id]
    assert page.next_before_id is None and not page.has_more

    rated = feedback_create.sync(
        client=student,
        body=FeedbackSubmitRequest(message=reply.id, feedback_type=FeedbackTypeEnum.DETAILED, rating=5),
    )
    assert isinstance(rated, Feedback) and rated.rating == 5, rated

    progress = progress_add_create.sync(tutor.id, client=student, body=ProgressAddRequest(minutes=25))
    assert isinstance(progress, Progress) and progress.total_minutes == 25, progress

    listed = chats_list.sync(client=student)
    assert isinstance(listed, PaginatedChatList) and listed.count == 1, listed

    refreshed = auth_refresh_create.sync(client=anonymous, body=RefreshTokenRequest(refresh=tokens.refresh))
    assert isinstance(refreshed, TokenPair) and refreshed.refresh != tokens.refresh, refreshed
    assert rating and (tokens_used is None or tokens_used >= 0)
    return reply.content
