from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from tutor_platform.api import APIView
from tutor_platform.schema import UNAUTHORIZED

from . import services as usage
from .serializers import UsageSerializer


class UsageView(APIView):
    summaries = {
        "get": "Get my usage and quota for today"
    }  # OpenAPI summaries (tutor_platform.schema.AutoSchema)

    @extend_schema(tags=["auth"], responses={200: UsageSerializer, 401: UNAUTHORIZED})
    def get(self, request: Request) -> Response:
        return Response(UsageSerializer(usage.usage_today(request.user)).data)
