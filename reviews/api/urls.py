from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("documents", views.DocumentViewSet, basename="document")
router.register("comments", views.CommentViewSet, basename="comment")
router.register("suggestions", views.SuggestionViewSet, basename="suggestion")
router.register("discussions", views.DiscussionViewSet, basename="discussion")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include(router.urls)),
]
