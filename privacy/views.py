from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.serializers import EraseAccountSerializer
from accounts.views import MeView
from tutor_platform.api import APIView
from tutor_platform.schema import THROTTLED, UNAUTHORIZED, VALIDATION_ERROR
from tutor_platform.throttling import ExportRateThrottle, PasswordCheckThrottle, UserRateThrottle

from . import services
from .export import ExportDocumentSerializer, export_document


# `/auth/me/`: the profile (accounts.views.MeView), and erasing the account.
# (No docstring: the schema would show it as the profile's description.)
class AccountView(MeView):
    summaries = {**MeView.summaries, "delete": "Erase my account"}

    @extend_schema(
        tags=["auth"],
        request=EraseAccountSerializer,
        responses={
            204: OpenApiResponse(description="Erased; every token of the account answers 401."),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
            429: THROTTLED,
        },
        description=(
            "Erases the account: chats, messages, progress, preferences and tokens. "
            "Feedback given with `allow_training: true` is kept for training without "
            "any link to you; the rest is deleted. The email can be registered again."
        ),
    )
    def delete(self, request: Request) -> Response:
        serializer = EraseAccountSerializer(data=request.data, context={"user": request.user})
        serializer.is_valid(raise_exception=True)
        services.user_erase(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_throttles(self) -> list:
        throttles = super().get_throttles()
        if self.request.method == "DELETE":
            throttles.append(PasswordCheckThrottle())
        return throttles


class ExportView(APIView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"get": "Download all my data"}

    throttle_classes = [UserRateThrottle, ExportRateThrottle]

    @extend_schema(
        tags=["auth"],
        responses={
            (200, "application/json"): OpenApiResponse(
                ExportDocumentSerializer, description="A download (`Content-Disposition: attachment`)."
            ),
            401: UNAUTHORIZED,
            429: THROTTLED,
        },
        description=(
            "All your data as one JSON document: profile, preferences, chats with every "
            "message, feedback, progress and usage per day. Written as it is read, so "
            "its size is not limited."
        ),
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        response = StreamingHttpResponse(
            export_document(request.user), content_type="application/json; charset=utf-8"
        )
        stamp = timezone.now().strftime("%Y%m%d")
        response["Content-Disposition"] = f'attachment; filename="tutor-platform-export-{stamp}.json"'
        return response
