from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from . import live, views

router = SimpleRouter()
router.register("documents", views.DocumentViewSet, basename="document")
router.register("comments", views.CommentViewSet, basename="comment")
router.register("suggestions", views.SuggestionViewSet, basename="suggestion")
router.register("discussions", views.DiscussionViewSet, basename="discussion")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("typing/", live.TypingView.as_view(), name="typing"),
    path("cursor/", live.CursorView.as_view(), name="cursor"),
    path("presence/", live.PresenceView.as_view(), name="presence"),
    path("", include(router.urls)),
]
