from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.response import Response

from tutor_platform.api import APIView
from tutor_platform.schema import THROTTLED, UNAUTHORIZED, VALIDATION_ERROR, error
from tutor_platform.throttling import (
    AnonRateThrottle,
    LoginFailures,
)

from . import services
from .serializers import (
    ChangePasswordSerializer,
    LoginSerializer,
    ProfileSerializer,
    RefreshTokenSerializer,
    RegisterSerializer,
    TokenPairSerializer,
)


class PublicView(APIView):
    """Needs no token, and ignores a stale one a client may still send."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request: Request) -> str:
        # Keeps 401 (not 403) for bad credentials on unauthenticated views.
        return 'Bearer realm="api"'


class RegisterView(PublicView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"post": "Register a student"}

    @extend_schema(
        tags=["auth"],
        request=RegisterSerializer,
        responses={201: ProfileSerializer, 400: VALIDATION_ERROR, 429: THROTTLED},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = RegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_register(**serializer.validated_data)
        return Response(ProfileSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginView(PublicView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"post": "Log in (get a token pair)"}

    throttle_classes = [AnonRateThrottle]

    @extend_schema(
        tags=["auth"],
        request=LoginSerializer,
        responses={
            200: TokenPairSerializer,
            400: VALIDATION_ERROR,
            401: error("Wrong credentials or inactive user.", "invalid_credentials"),
            429: THROTTLED,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        failures = LoginFailures(request)
        wait = failures.wait()
        if wait is not None:
            raise Throttled(wait)
        try:
            tokens = services.auth_login(
                request=request,
                identifier=data.get("email") or data["username"],
                password=data["password"],
            )
        except AuthenticationFailed:
            failures.record()
            raise
        return Response(tokens)


class RefreshView(PublicView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"post": "Rotate the refresh token"}

    @extend_schema(
        tags=["auth"],
        request=RefreshTokenSerializer,
        responses={
            200: TokenPairSerializer,
            400: VALIDATION_ERROR,
            401: error(
                "Invalid, expired or already used refresh token, or its user is gone.",
                "token_not_valid",
                "no_active_account",
            ),
            429: THROTTLED,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(services.auth_refresh(raw_refresh=serializer.validated_data["refresh"]))


class LogoutView(PublicView):
    """Blacklists the refresh token. The token itself is the credential."""

    summaries = {
        "post": "Log out (revoke a refresh token)"
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    @extend_schema(
        tags=["auth"],
        request=RefreshTokenSerializer,
        responses={
            204: OpenApiResponse(description="The refresh token no longer works."),
            400: VALIDATION_ERROR,
            401: error("Invalid or expired refresh token.", "token_not_valid"),
            429: THROTTLED,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = RefreshTokenSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.auth_logout(raw_refresh=serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "get": "Get my profile",
        "patch": "Update my profile",
    }

    @extend_schema(tags=["auth"], responses={200: ProfileSerializer, 401: UNAUTHORIZED})
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(
        tags=["auth"],
        request=ProfileSerializer,
        responses={200: ProfileSerializer, 400: VALIDATION_ERROR, 401: UNAUTHORIZED},
    )
    def patch(self, request: Request) -> Response:
        serializer = ProfileSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, data=serializer.validated_data)
        return Response(ProfileSerializer(user).data)


class ChangePasswordView(APIView):
    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {"post": "Change my password"}

    @extend_schema(
        tags=["auth"],
        request=ChangePasswordSerializer,
        responses={
            204: OpenApiResponse(description="Changed; every earlier token stops working."),
            400: VALIDATION_ERROR,
            401: UNAUTHORIZED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ChangePasswordSerializer(data=request.data, context={"user": request.user})
        serializer.is_valid(raise_exception=True)
        services.user_change_password(
            user=request.user, new_password=serializer.validated_data["new_password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


_PREFERENCES_RESPONSES = {200: OpenApiTypes.OBJECT, 400: VALIDATION_ERROR, 401: UNAUTHORIZED}


class PreferencesView(APIView):
    """The user's preferences: a free-form JSON object of at most 16 KiB."""

    # OpenAPI summaries (tutor_platform.schema.AutoSchema)
    summaries = {
        "get": "Get my preferences",
        "put": "Replace my preferences",
        "patch": "Merge into my preferences",
    }

    @extend_schema(tags=["auth"], responses=_PREFERENCES_RESPONSES)
    def get(self, request: Request) -> Response:
        return Response(request.user.preferences)

    @extend_schema(
        tags=["auth"],
        request=OpenApiTypes.OBJECT,
        responses=_PREFERENCES_RESPONSES,
        description="Merges top-level keys into the preferences; a key set to `null` is removed.",
    )
    def patch(self, request: Request) -> Response:
        return Response(services.user_preferences_set(user=request.user, data=request.data, merge=True))

    @extend_schema(
        tags=["auth"],
        request=OpenApiTypes.OBJECT,
        responses=_PREFERENCES_RESPONSES,
        description="Replaces the whole preferences object.",
    )
    def put(self, request: Request) -> Response:
        return Response(services.user_preferences_set(user=request.user, data=request.data, merge=False))


@never_cache
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page, with the API login's budget (per address and account)."""
    if request.method != "POST":
        return admin.site.login(request)
    failures = LoginFailures(request)
    wait = failures.wait()
    if wait is not None:
        response = HttpResponse(
            f"Too many login attempts. Try again in {int(wait)} seconds.",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(int(wait))
        return response
    response = admin.site.login(request)
    if not request.user.is_authenticated:  # the form came back with an error
        failures.record()
    return response
