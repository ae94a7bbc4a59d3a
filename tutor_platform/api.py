"""Base classes for the API's views: ids in URLs are digits, and unknown
query parameters are a 400.

A typo such as `?tutor_id=` would otherwise silently mean "no filter". The
allowed names are derived from what the view declares (pagination, filter
backends, filterset) plus `extra_query_params` per action, the same things
the OpenAPI schema is generated from.
"""

from typing import Any

from rest_framework import filters, views, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.settings import api_settings

from .serving import ID_PATTERN  # ids in URLs; the gunicorn worker sorts requests by it too


class StrictQueryParamsMixin:
    extra_query_params: dict[str | None, set[str]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if getattr(self, request.method.lower(), None) is None:
            return  # not a method of this view: DRF answers 405
        unknown = set(request.query_params) - self.allowed_query_params()
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in sorted(unknown)})

    def allowed_query_params(self) -> set[str]:
        action = getattr(self, "action", None)
        allowed = set(self.extra_query_params.get(action, ()))
        if action != "list":
            return allowed
        paginator = getattr(self, "paginator", None)
        if paginator is not None:
            allowed |= {paginator.page_query_param, paginator.page_size_query_param}
        for backend in getattr(self, "filter_backends", ()):
            if issubclass(backend, filters.SearchFilter):
                allowed.add(api_settings.SEARCH_PARAM)
            if issubclass(backend, filters.OrderingFilter):
                allowed.add(api_settings.ORDERING_PARAM)
        filterset_class = getattr(self, "filterset_class", None)
        if filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        return allowed


class APIView(StrictQueryParamsMixin, views.APIView):
    pass


class GenericViewSet(StrictQueryParamsMixin, viewsets.GenericViewSet):
    lookup_value_regex = ID_PATTERN


class ReadOnlyModelViewSet(StrictQueryParamsMixin, viewsets.ReadOnlyModelViewSet):
    lookup_value_regex = ID_PATTERN
