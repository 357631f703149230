from rest_framework.pagination import CursorPagination


class OldestFirstCursorPagination(CursorPagination):
    """``?cursor=`` pages, oldest first, at most 200 per page (``?pageSize=``)."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "pageSize"
    max_page_size = 200
