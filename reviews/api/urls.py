from django.urls import include, path
from rest_framework.routers import SimpleRouter

from . import live, views
from . import moderation
from .auth import ObtainToken

router = SimpleRouter()
router.register("documents", views.DocumentViewSet, basename="document")
router.register("comments", views.CommentViewSet, basename="comment")
router.register("suggestions", views.SuggestionViewSet, basename="suggestion")
router.register("discussions", views.DiscussionViewSet, basename="discussion")

urlpatterns = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("typing/", live.TypingView.as_view(), name="typing"),
    path("cursor/", live.CursorView.as_view(), name="cursor"),
    path("presence/", live.PresenceView.as_view(), name="presence"),
    path("comments/<int:pk>/flag/", moderation.CommentFlagView.as_view(), name="comment-flag"),
    path("comments/<int:pk>/hide/", moderation.CommentHideView.as_view(), name="comment-hide"),
    path("comments/<int:pk>/unhide/", moderation.CommentUnhideView.as_view(), name="comment-unhide"),
    path("comments/<int:pk>/revisions/", moderation.CommentRevisionsView.as_view(), name="comment-revisions"),
    path("messages/<int:pk>/", moderation.MessageDetailView.as_view(), name="message-detail"),
    path("messages/<int:pk>/flag/", moderation.MessageFlagView.as_view(), name="message-flag"),
    path("messages/<int:pk>/hide/", moderation.MessageHideView.as_view(), name="message-hide"),
    path("messages/<int:pk>/unhide/", moderation.MessageUnhideView.as_view(), name="message-unhide"),
    path("discussions/<int:discussion_pk>/messages/<int:pk>/flag/", moderation.MessageFlagView.as_view(),
         name="discussion-message-flag"),
    path("documents/<int:pk>/export", moderation.DocumentExportView.as_view(), name="document-export"),
    path("documents/<int:pk>/export/", moderation.DocumentExportView.as_view()),
    path("", include(router.urls)),
]
