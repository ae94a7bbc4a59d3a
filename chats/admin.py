import json

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from attachments.admin import thumbnails
from tutor_platform.pseudonyms import NoLookupsByStudent, student_key

from .models import Chat, Message

CONVERSATION_PREVIEW = 20


class ReadOnlyAdmin(NoLookupsByStudent, admin.ModelAdmin):
    """Conversations are the students' own words: looked at, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Chat)
class ChatAdmin(ReadOnlyAdmin):
    """Students appear by their pseudonymous key, as everywhere the ML team looks."""

    list_display = ("__str__", "student", "tutor", "created_at", "last_message_at")
    list_filter = ("tutor",)
    list_select_related = ("tutor",)
    search_fields = ("title",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("student", "tutor", "title", "created_at", "last_message_at", "conversation")
    readonly_fields = fields

    @admin.display(description=_("Student (pseudonymous key)"))
    def student(self, obj: Chat) -> str | None:
        return student_key(obj.user_id)

    @admin.display(description=format_lazy(_("Last {count} messages"), count=CONVERSATION_PREVIEW))
    def conversation(self, obj: Chat) -> str:
        latest = list(obj.messages.order_by("-id")[:CONVERSATION_PREVIEW])[::-1]
        rows = format_html_join(
            "",
            '<div class="message message-{}"><strong>{}</strong> <small>{}</small>'
            '<pre style="white-space: pre-wrap">{}</pre></div>',
            ((m.role, m.get_role_display(), m.created_at, m.content) for m in latest),
        )
        link = reverse("admin:chats_message_changelist") + f"?chat__id__exact={obj.pk}"
        return format_html(
            '{}<p><a href="{}">{}</a></p>', rows or "—", link, _("All messages of this chat →")
        )


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "chat", "role", "short_content", "created_at")
    list_filter = ("role", "chat__tutor")
    list_select_related = ("chat",)
    search_fields = ("content",)
    show_full_result_count = False
    fields = ("chat", "role", "content", "attachments_pretty", "metadata_pretty", "reply_to", "created_at")
    readonly_fields = fields

    @admin.display(description=_("Content"))
    def short_content(self, obj: Message) -> str:
        return obj.content if len(obj.content) <= 80 else obj.content[:80] + "…"

    @admin.display(description=_("Metadata"))
    def metadata_pretty(self, obj: Message) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.metadata, indent=2, ensure_ascii=False))

    @admin.display(description=_("Attachments"))
    def attachments_pretty(self, obj: Message) -> str:
        return thumbnails(obj.attachments)
