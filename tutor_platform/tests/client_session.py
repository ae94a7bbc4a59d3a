"""Every operation of the API, once, through the Python client generated from
our OpenAPI schema (openapi-python-client), with no workaround: no cast, no
`Any`, no hand-written request. A student's whole session (chatting,
variants, feedback, progress, privacy, erasure) and the ML team's reads.
`test_generated_client.py` generates the client, type-checks this file with
`mypy --strict`, runs it against a live server, and checks that every
operation of the schema is called here, so a schema regression fails the
suite.
"""

import base64
from io import BytesIO

from tutor_client import AuthenticatedClient, Client
from tutor_client.api.api import root_retrieve
from tutor_client.api.attachments import (
    attachments_content_retrieve,
    attachments_create,
    attachments_destroy,
    attachments_retrieve,
)
from tutor_client.api.auth import (
    auth_change_password_create,
    auth_login_create,
    auth_logout_create,
    auth_me_destroy,
    auth_me_export_retrieve,
    auth_me_partial_update,
    auth_me_preferences_partial_update,
    auth_me_preferences_retrieve,
    auth_me_preferences_update,
    auth_me_retrieve,
    auth_me_usage_retrieve,
    auth_refresh_create,
    auth_register_create,
)
from tutor_client.api.catalogue import courses_list, courses_retrieve, tutors_list, tutors_retrieve
from tutor_client.api.chats import (
    chats_create,
    chats_destroy,
    chats_list,
    chats_partial_update,
    chats_retrieve,
)
from tutor_client.api.feedback import (
    feedback_create,
    feedback_destroy,
    feedback_list,
    feedback_retrieve,
    feedback_revoke_consent_create,
)
from tutor_client.api.health import health_retrieve
from tutor_client.api.messages import (
    chats_messages_create,
    chats_messages_destroy,
    chats_messages_retrieve,
    chats_messages_select_create,
    chats_messages_variants_list,
    chats_regenerate_create,
    chats_reply_create,
    chats_stream_retrieve,
)
from tutor_client.api.ml import (
    ml_consent_revocations_retrieve,
    ml_experiments_list,
    ml_experiments_retrieve,
    ml_feedback_list,
    ml_feedback_mark_processed_create,
    ml_preference_pairs_list,
    ml_tutors_versions_list,
)
from tutor_client.api.progress import progress_add_create, progress_list, progress_retrieve, progress_update
from tutor_client.models import (
    ApiRoot,
    Attachment,
    AttachmentInUseError,
    AttachmentReferenceRequest,
    AuthMeDestroyBody,
    AuthMePreferencesPartialUpdateBody,
    AuthMePreferencesPartialUpdateResponse200,
    AuthMePreferencesRetrieveResponse200,
    AuthMePreferencesUpdateBody,
    AuthMePreferencesUpdateResponse200,
    ChangePasswordRequest,
    Chat,
    ChatCreateRequest,
    ConsentRevocationList,
    Course,
    Experiment,
    ExportDocument,
    Feedback,
    FeedbackSubmitRequest,
    FeedbackTypeEnum,
    Health,
    LoginRequest,
    MarkProcessedRequest,
    MarkProcessedResult,
    Message,
    MessagePage,
    NothingToReplyError,
    PaginatedChatList,
    PaginatedCourseList,
    PaginatedExperimentList,
    PaginatedFeedbackList,
    PaginatedMLFeedbackList,
    PaginatedPreferencePairList,
    PaginatedProgressList,
    PaginatedTutorList,
    PatchedChatUpdateRequest,
    PatchedProfileRequest,
    Profile,
    Progress,
    ProgressAddRequest,
    ProgressSetRequest,
    QuickReactionEnum,
    RefreshTokenRequest,
    RegisterRequest,
    ReplyRequestRequest,
    ReplyResult,
    RevokeConsentResult,
    RoleEnum,
    SendMessageRequest,
    SendResult,
    TokenPair,
    Tutor,
    TutorVersionStats,
    UploadRequest,
    Usage,
)
from tutor_client.models.tutors_list_ordering import TutorsListOrdering
from tutor_client.types import File

# A 1 x 1 PNG: the photo of a problem, as small as it gets.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)


def run(base_url: str, email: str, password: str, ml_email: str, ml_password: str) -> str:
    """Every operation once. Returns the tutor's first reply, for the caller to check."""
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    root = root_retrieve.sync(client=anonymous)
    assert isinstance(root, ApiRoot) and root.chats == "/api/v1/chats/", root
    health = health_retrieve.sync(client=anonymous)
    assert isinstance(health, Health) and health.database == "ok", health

    # The catalogue, without a token.
    courses = courses_list.sync(client=anonymous)
    assert isinstance(courses, PaginatedCourseList) and courses.results, courses
    course = courses_retrieve.sync(courses.results[0].id, client=anonymous)
    assert isinstance(course, Course), course
    tutors = tutors_list.sync(client=anonymous, ordering=TutorsListOrdering.RATING_DESC)
    assert isinstance(tutors, PaginatedTutorList) and tutors.results, tutors
    tutor = tutors_retrieve.sync(tutors.results[0].id, client=anonymous)
    assert isinstance(tutor, Tutor), tutor
    rating: str = tutor.rating  # a decimal string, as the schema says

    # An account.
    registered = auth_register_create.sync(
        client=anonymous, body=RegisterRequest(email=email, username="Иван_Петров", password=password)
    )
    assert isinstance(registered, Profile), registered
    tokens = auth_login_create.sync(client=anonymous, body=LoginRequest(email=email, password=password))
    assert isinstance(tokens, TokenPair), tokens
    refreshed = auth_refresh_create.sync(client=anonymous, body=RefreshTokenRequest(refresh=tokens.refresh))
    assert isinstance(refreshed, TokenPair) and refreshed.refresh != tokens.refresh, refreshed
    assert (
        auth_logout_create.sync(client=anonymous, body=RefreshTokenRequest(refresh=refreshed.refresh)) is None
    )
    student = AuthenticatedClient(base_url=base_url, token=refreshed.access, raise_on_unexpected_status=True)
    me = auth_me_retrieve.sync(client=student)
    assert isinstance(me, Profile) and me.username == "Иван_Петров", me
    renamed = auth_me_partial_update.sync(client=student, body=PatchedProfileRequest(full_name="Иван Петров"))
    assert isinstance(renamed, Profile) and renamed.full_name == "Иван Петров", renamed
    new_password = password + "-2"
    changed = auth_change_password_create.sync(
        client=student, body=ChangePasswordRequest(old_password=password, new_password=new_password)
    )
    assert changed is None, changed
    tokens = auth_login_create.sync(client=anonymous, body=LoginRequest(email=email, password=new_password))
    assert isinstance(tokens, TokenPair), tokens
    student = AuthenticatedClient(base_url=base_url, token=tokens.access, raise_on_unexpected_status=True)

    preferences = auth_me_preferences_update.sync(
        client=student, body=AuthMePreferencesUpdateBody.from_dict({"theme": "dark"})
    )
    assert isinstance(preferences, AuthMePreferencesUpdateResponse200), preferences
    merged = auth_me_preferences_partial_update.sync(
        client=student, body=AuthMePreferencesPartialUpdateBody.from_dict({"font": "large"})
    )
    assert isinstance(merged, AuthMePreferencesPartialUpdateResponse200), merged
    read = auth_me_preferences_retrieve.sync(client=student)
    assert isinstance(read, AuthMePreferencesRetrieveResponse200), read
    assert read.to_dict() == {"theme": "dark", "font": "large"}, read

    # A chat: a send, a regeneration, the variants, choosing one.
    chat = chats_create.sync(client=student, body=ChatCreateRequest(tutor=tutor.id))
    assert isinstance(chat, Chat) and chat.tutor.is_available, chat
    sent = chats_messages_create.sync(
        chat.id, client=student, body=SendMessageRequest(content="Что такое дробь?"), idempotency_key="send-1"
    )
    assert isinstance(sent, SendResult), sent
    reply = sent.assistant_message
    assert reply.role == RoleEnum.ASSISTANT
    tokens_used: int | None = (
        reply.metadata.tokens_used if isinstance(reply.metadata.tokens_used, int) else None
    )
    nothing = chats_reply_create.sync(chat.id, client=student, body=ReplyRequestRequest())
    assert isinstance(nothing, NothingToReplyError), nothing  # the send got its reply
    assert chats_stream_retrieve.sync(chat.id, client=student) is None  # nothing is being written: 204
    again = chats_regenerate_create.sync(chat.id, client=student, idempotency_key="regenerate-1")
    assert isinstance(again, ReplyResult), again
    variants = chats_messages_variants_list.sync(chat.id, again.assistant_message.id, client=student)
    assert isinstance(variants, list) and [v.id for v in variants] == [reply.id, again.assistant_message.id]
    chosen = chats_messages_select_create.sync(chat.id, reply.id, client=student)
    assert isinstance(chosen, Message) and chosen.id == reply.id, chosen
    page = chats_messages_retrieve.sync(chat.id, client=student, limit=10)
    assert isinstance(page, MessagePage), page
    assert [message.id for message in page.results] == [sent.user_message.id, reply.id]
    assert page.next_before_id is None and not page.has_more
    # A photo of the problem: uploaded, shown by a message, then it stays while the message does.
    photo = attachments_create.sync(
        client=student,
        body=UploadRequest(
            file=File(payload=BytesIO(PIXEL_PNG), file_name="задача.png", mime_type="image/png")
        ),
    )
    assert isinstance(photo, Attachment) and photo.kind.value == "image" and photo.width == 1, photo
    described = attachments_retrieve.sync(photo.id, client=student)
    assert isinstance(described, Attachment) and described.sha256 == photo.sha256, described
    content = attachments_content_retrieve.sync(photo.id, client=student)
    assert isinstance(content, File) and content.payload.read().startswith(b"\x89PNG"), content
    shown = chats_messages_create.sync(
        chat.id,
        client=student,
        body=SendMessageRequest(
            content="А это как решить?", attachments=[AttachmentReferenceRequest(id=photo.id)]
        ),
    )
    assert isinstance(shown, SendResult), shown
    assert [a.id for a in shown.user_message.attachments] == [photo.id], shown
    in_use = attachments_destroy.sync(photo.id, client=student)
    assert isinstance(in_use, AttachmentInUseError), in_use
    titled = chats_partial_update.sync(chat.id, client=student, body=PatchedChatUpdateRequest(title="Дроби"))
    assert isinstance(titled, Chat) and titled.title == "Дроби", titled
    fetched = chats_retrieve.sync(chat.id, client=student)
    assert isinstance(fetched, Chat) and fetched.title == "Дроби", fetched
    listed = chats_list.sync(client=student)
    assert isinstance(listed, PaginatedChatList) and listed.count == 1, listed

    # Feedback, progress, usage.
    rated = feedback_create.sync(
        client=student,
        body=FeedbackSubmitRequest(
            message=reply.id, feedback_type=FeedbackTypeEnum.DETAILED, rating=5, allow_training=True
        ),
    )
    assert isinstance(rated, Feedback) and rated.rating == 5, rated
    assert rated.quick_reaction == QuickReactionEnum.VALUE_0  # detailed feedback: no reaction ("")
    quick = feedback_create.sync(
        client=student,
        body=FeedbackSubmitRequest(
            message=again.assistant_message.id,
            feedback_type=FeedbackTypeEnum.QUICK,
            quick_reaction=QuickReactionEnum.TOO_HARD,
        ),
    )
    assert isinstance(quick, Feedback), quick
    mine = feedback_list.sync(client=student)
    assert isinstance(mine, PaginatedFeedbackList) and mine.count == 2, mine
    one = feedback_retrieve.sync(quick.id, client=student)
    assert isinstance(one, Feedback) and one.id == quick.id, one
    assert feedback_destroy.sync(quick.id, client=student) is None
    progress = progress_add_create.sync(tutor.id, client=student, body=ProgressAddRequest(minutes=25))
    assert isinstance(progress, Progress) and progress.total_minutes == 25, progress
    set_to = progress_update.sync(tutor.id, client=student, body=ProgressSetRequest(total_minutes=40))
    assert isinstance(set_to, Progress) and set_to.total_minutes == 40, set_to
    read_back = progress_retrieve.sync(tutor.id, client=student)
    assert isinstance(read_back, Progress) and read_back.total_minutes == 40, read_back
    progresses = progress_list.sync(client=student)
    assert isinstance(progresses, PaginatedProgressList) and progresses.count == 1, progresses
    usage = auth_me_usage_retrieve.sync(client=student)
    assert isinstance(usage, Usage) and usage.messages == 3, usage  # send, regeneration, the photo's send

    # The ML team takes the consented feedback and marks it processed.
    ml_tokens = auth_login_create.sync(
        client=anonymous, body=LoginRequest(email=ml_email, password=ml_password)
    )
    assert isinstance(ml_tokens, TokenPair), ml_tokens
    ml = AuthenticatedClient(base_url=base_url, token=ml_tokens.access, raise_on_unexpected_status=True)
    items = ml_feedback_list.sync(client=ml, allow_training=True)
    assert isinstance(items, PaginatedMLFeedbackList) and [i.id for i in items.results] == [rated.id], items
    marked = ml_feedback_mark_processed_create.sync(client=ml, body=MarkProcessedRequest(ids=[rated.id]))
    assert isinstance(marked, MarkProcessedResult) and marked.updated == 1, marked
    pairs = ml_preference_pairs_list.sync(client=ml)
    assert isinstance(pairs, PaginatedPreferencePairList), pairs
    versions = ml_tutors_versions_list.sync(tutor.id, client=ml)
    assert isinstance(versions, list) and all(isinstance(v, TutorVersionStats) for v in versions), versions
    experiments = ml_experiments_list.sync(client=ml, tutor=tutor.id)
    assert isinstance(experiments, PaginatedExperimentList) and len(experiments.results) == 1, experiments
    experiment = ml_experiments_retrieve.sync(experiments.results[0].id, client=ml)
    assert isinstance(experiment, Experiment) and [arm.arm for arm in experiment.arms] == ["A", "B"], (
        experiment
    )
    assert sum(arm.replies for arm in experiment.arms) >= 1, experiment  # this session's replies

    # Privacy: the export, consent withdrawn, history cleared, the chat deleted, the account erased.
    export = auth_me_export_retrieve.sync(client=student)
    assert isinstance(export, ExportDocument) and len(export.chats) == 1, export
    revoked = feedback_revoke_consent_create.sync(client=student)
    assert isinstance(revoked, RevokeConsentResult) and revoked.updated == 1, revoked
    revocations = ml_consent_revocations_retrieve.sync(client=ml)
    assert isinstance(revocations, ConsentRevocationList), revocations
    assert [r.feedback_id for r in revocations.results] == [rated.id], revocations
    assert chats_messages_destroy.sync(chat.id, client=student) is None
    assert chats_destroy.sync(chat.id, client=student) is None
    assert auth_me_destroy.sync(client=student, body=AuthMeDestroyBody(password=new_password)) is None
    gone = auth_login_create.sync(client=anonymous, body=LoginRequest(email=email, password=new_password))
    assert not isinstance(gone, TokenPair), gone

    assert rating and (tokens_used is None or tokens_used >= 0)
    return reply.content
