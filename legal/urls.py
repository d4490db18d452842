from __future__ import annotations

from django.urls import path

from legal import views

app_name = "legal"

urlpatterns = [
    path("estimate/", views.estimate_preview, name="estimate_preview"),
    path("cases/<str:reference>/<str:what>/", views.record, name="record"),
]
