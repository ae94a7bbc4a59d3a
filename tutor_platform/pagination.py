from typing import Any

from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


class Paginator(DjangoPaginator):
    """Django's paginator without the COUNT when it is not needed: the first
    page is read with one row more than it holds, and when the rows end
    before that the count is the rows read (issue 32: most students have
    fewer chats than a page). A longer list is counted as Django does, after
    its first page is read."""

    def page(self, number: Any) -> Page:
        if str(number) != "1" or self.orphans or "count" in self.__dict__:
            return super().page(number)
        rows = list(self.object_list[0 : self.per_page + 1])
        if len(rows) <= self.per_page:
            self.__dict__["count"] = len(rows)  # `count` is a cached_property: known now
        # (Otherwise the page is the rows read, and `count` is asked of the database when needed.)
        return self._get_page(rows[: self.per_page], 1, self)


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 20; larger sizes are capped at 100).

    A `page_size` that is not a positive integer is a 400, not silently the default.
    """

    django_paginator_class = Paginator
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["A positive integer is required."]})
        return min(size, self.max_page_size)

    def get_page_number(self, request: Request, paginator: Any) -> str | int:
        # DRF reads `?page=` (empty) as page 1; here it is a 400 like `?page=x` is a 404.
        if request.query_params.get(self.page_query_param) == "":
            raise ValidationError({self.page_query_param: ["A page number is required."]})
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["description"] = f"Results per page (default {self.page_size}, at most 100)."
        return parameters
