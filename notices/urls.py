from __future__ import annotations

from django.urls import path

from notices import views

urlpatterns = [
    path("n/<str:token>/", views.notice_link, name="notice_link"),
    path("notices/settings/", views.preferences, name="notice_preferences"),
]
