"""Input validation.  Output is built by ``reviews.representations`` so that a
REST response and the event data of the same object are the same JSON."""

from __future__ import annotations

from rest_framework import serializers

from ..models import CONTENT_MAX, Role, Visibility
from ..stream_access import is_valid_path

TEXT_MAX = 10_000
TITLE_MAX = 200


class DocPathField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        # A path with spaces or a newline around it is invalid, not trimmed.
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_valid_path(value):
            raise serializers.ValidationError(
                "Enter a valid document path: segments of letters, digits, '.', '_' or '-' joined by '/'."
            )
        return value


class AnchorSerializer(serializers.Serializer):
    # Any passage of the document may be quoted: the limit is the content's.
    quote = serializers.CharField(max_length=CONTENT_MAX, trim_whitespace=False)
    prefix = serializers.CharField(max_length=CONTENT_MAX, required=False, allow_blank=True, trim_whitespace=False)
    suffix = serializers.CharField(max_length=CONTENT_MAX, required=False, allow_blank=True, trim_whitespace=False)
    start = serializers.IntegerField(required=False, min_value=0, max_value=CONTENT_MAX)
    end = serializers.IntegerField(required=False, min_value=0, max_value=CONTENT_MAX)

    def validate(self, attrs):
        if ("start" in attrs) != ("end" in attrs):
            raise serializers.ValidationError("Give both start and end, or neither.")
        if "start" in attrs and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError("start must not be greater than end.")
        return attrs


class PositionedAnchorSerializer(AnchorSerializer):
    start = serializers.IntegerField(min_value=0, max_value=CONTENT_MAX)
    end = serializers.IntegerField(min_value=0, max_value=CONTENT_MAX)


class DocumentCreateSerializer(serializers.Serializer):
    path = DocPathField()
    title = serializers.CharField(max_length=TITLE_MAX)
    content = serializers.CharField(max_length=CONTENT_MAX, allow_blank=True, trim_whitespace=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False, default=Visibility.PRIVATE)


class DocumentUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=TITLE_MAX, required=False)
    content = serializers.CharField(max_length=CONTENT_MAX, required=False, allow_blank=True, trim_whitespace=False)
    visibility = serializers.ChoiceField(choices=Visibility.choices, required=False)


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class CommentCreateSerializer(serializers.Serializer):
    docPath = DocPathField()
    body = serializers.CharField(max_length=TEXT_MAX, trim_whitespace=False)
    anchor = AnchorSerializer(required=False, allow_null=True)
    parent = serializers.IntegerField(required=False, allow_null=True, min_value=1)

    def validate_body(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class CommentUpdateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=TEXT_MAX, required=False, trim_whitespace=False)
    resolved = serializers.BooleanField(required=False)
    hidden = serializers.BooleanField(required=False)

    def validate_body(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        return value


class SuggestionCreateSerializer(serializers.Serializer):
    docPath = DocPathField()
    anchor = PositionedAnchorSerializer()
    replacement = serializers.CharField(max_length=TEXT_MAX, allow_blank=True, trim_whitespace=False)
    note = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")


class SuggestionUpdateSerializer(serializers.Serializer):
    replacement = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True, trim_whitespace=False)
    note = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)


class DiscussionCreateSerializer(serializers.Serializer):
    docPath = DocPathField()
    title = serializers.CharField(max_length=TITLE_MAX)


class MessageCreateSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=TEXT_MAX)
