from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class OldestFirstCursorPagination(CursorPagination):
    """``?cursor=`` pages, oldest first, at most 200 per page (``?pageSize=``)."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "pageSize"
    max_page_size = 200

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with 404, which would look like
        # a document the user may not read: it is invalid input, a 400.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
