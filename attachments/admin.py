"""What the admin shows of attachments: thumbnails on the message and
feedback pages, through the same guarded view the API serves files with
(a signed link made for the staff member who may see that page)."""

from collections.abc import Sequence
from typing import Any

from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from . import links
from .models import Attachment

THUMBNAIL_PX = 160


def thumbnails(kept: Sequence[dict[str, Any]]) -> SafeString | str:
    """A message's attachments (its kept copy): images as thumbnails, documents as links."""
    if not kept:
        return "—"
    return format_html_join(
        "",
        '<a class="attachment" href="{0}" target="_blank" rel="noopener" title="{1}">{2}</a> ',
        ((link, _caption(item), _preview(item, link)) for item, link in _linked(kept)),
    )


def _linked(kept: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Each attachment with its signed link, signed once for the link and the image alike."""
    return [(item, links.signed_path(item["id"])) for item in kept]


def _caption(item: dict[str, Any]) -> str:
    size = f" {item['width']}×{item['height']}," if item["kind"] == Attachment.Kind.IMAGE else ""
    return f"{item['name']} ({item['content_type']},{size} {filesizeformat(item['size'])})"


def _preview(item: dict[str, Any], link: str) -> SafeString | str:
    if item["kind"] != Attachment.Kind.IMAGE:
        return f"📄 {item['name']}"
    return format_html(
        '<img src="{}" alt="{}" loading="lazy" style="max-width: {}px; max-height: {}px; '
        'border: 1px solid var(--hairline-color); vertical-align: top">',
        link,
        item["name"],
        THUMBNAIL_PX,
        THUMBNAIL_PX,
    )
