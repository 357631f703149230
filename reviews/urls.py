from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("docs/<path:path>", views.document_page, name="document"),
]
