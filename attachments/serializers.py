from typing import Any

from rest_framework import serializers

from tutor_platform.serializers import datetimes

from .models import Attachment


class AttachmentSerializer(serializers.ModelSerializer):
    """An upload as the API shows it, and as a message keeps a copy of it."""

    class Meta:
        model = Attachment
        fields = ["id", "kind", "content_type", "name", "size", "width", "height", "sha256", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "width": {"help_text": "Pixels; null for documents."},
            "height": {"help_text": "Pixels; null for documents."},
            "size": {"help_text": "Bytes stored (for an image, of the re-encoded file)."},
            "sha256": {"help_text": "Hex SHA-256 of the bytes stored."},
        }

    def to_representation(self, attachment: Attachment) -> dict[str, Any]:
        """The fields above, read straight off the row (a message's copy is made from this)."""
        return {
            "id": attachment.pk,
            "kind": attachment.kind,
            "content_type": attachment.content_type,
            "name": attachment.name,
            "size": attachment.size,
            "width": attachment.width,
            "height": attachment.height,
            "sha256": attachment.sha256,
            "created_at": datetimes(self).to_representation(attachment.created_at),
        }


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=(
            "JPEG, PNG or WebP image, PDF or UTF-8 text, at most ATTACHMENT_MAX_BYTES (10 MiB). The type "
            "is read from the content; images are re-encoded without their metadata."
        ),
    )


# What training data keeps of an upload: no name (it may name the student), no file.
DESCRIBED_FIELDS = ("kind", "content_type", "size", "width", "height", "sha256")


def described(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's attachments (its kept copy) as the training export carries them."""
    return [{key: item[key] for key in DESCRIBED_FIELDS} for item in kept]
