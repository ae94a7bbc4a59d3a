from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 20, larger values capped at 100)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


# Object ids in URLs: digits only, and short enough to fit a 64-bit integer,
# so `/chats/abc/` and `/chats/99999999999999999999999/` are plain 404s.
ID_PATTERN = "[0-9]{1,18}"
