from typing import Any

from django.http import FileResponse, Http404
from django.http.response import HttpResponseBase
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from tutor_platform.api import GenericViewSet
from tutor_platform.throttling import UploadThrottle, UserRateThrottle

from . import links, schema, selectors, services, uploads
from .models import Attachment
from .serializers import AttachmentSerializer, UploadSerializer
from .uploads import UploadParser

OCTET_STREAM = "application/octet-stream"


class InvalidLink(PermissionDenied):
    default_detail = "This link is not valid, or has expired."
    default_code = "invalid_signature"


@schema.ATTACHMENTS
class AttachmentViewSet(GenericViewSet):
    """The user's own uploads. Another user's answers 404; `content/` also
    answers a signed link (links.py) without a token."""

    summaries = {
        "create": "Upload a file to attach to a message",
        "retrieve": "Get an upload",
        "destroy": "Delete an upload no message shows",
        "content": "Download an upload's file",
    }
    serializer_class = AttachmentSerializer
    parser_classes = [UploadParser]
    extra_query_params = {"content": {links.PARAMETER}}

    def _signed(self) -> bool:
        """A signed link to `content/`: its own credential (a token sent along is not looked at)."""
        request = getattr(self, "request", None)  # Django's, from View.setup (None in schema generation)
        if request is None or links.PARAMETER not in request.GET:
            return False
        return getattr(self, "action_map", {}).get(request.method.lower()) == "content"

    def get_authenticators(self) -> list:
        return [] if self._signed() else super().get_authenticators()

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self._signed() else super().get_permissions()

    def get_throttles(self) -> list[BaseThrottle]:
        if self._signed():
            return []  # AI-Core fetching a reply's images; the signature is the limit
        if self.action == "create":
            return [UserRateThrottle(), UploadThrottle()]
        return super().get_throttles()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The file is the answer whatever `Accept` says (an <img> asks for image/*).
        return super().perform_content_negotiation(request, force=force or self.action == "content")

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if self.action == "create" and response.status_code >= 400:
            uploads.drain(request._request)
        return super().finalize_response(request, response, *args, **kwargs)

    def get_object(self) -> Attachment:
        attachment_id = int(self.kwargs["pk"])
        if self._signed():
            if not links.verify(attachment_id, self.request.query_params[links.PARAMETER]):
                raise InvalidLink()
            found = Attachment.objects.filter(pk=attachment_id).first()
        else:
            found = selectors.owned(user=self.request.user).filter(pk=attachment_id).first()
        if found is None:
            raise Http404
        return found

    def create(self, request: Request) -> Response:
        body = UploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        attachment = services.attachment_upload(user=request.user, upload=body.validated_data["file"])
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(AttachmentSerializer(self.get_object()).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.attachment_delete(attachment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["get"])
    def content(self, request: Request, pk: str) -> HttpResponseBase:
        """The file with its own type; as plain bytes (`application/octet-stream`,
        a download) to a client that asks for exactly that."""
        attachment = self.get_object()
        if request.headers.get("Accept", "").strip() == OCTET_STREAM:
            content_type, download = OCTET_STREAM, True
        else:
            charset = "; charset=utf-8" if attachment.content_type == "text/plain" else ""
            content_type = attachment.content_type + charset
            download = attachment.kind == Attachment.Kind.DOCUMENT
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=download,
            filename=attachment.name,
            content_type=content_type,
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "sandbox"
        response["Cache-Control"] = "private, max-age=600"
        return response
