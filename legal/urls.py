from __future__ import annotations

from django.urls import path

from legal import views

app_name = "legal"

urlpatterns = [
    path("cases/<str:reference>/<str:what>/", views.record, name="record"),
]
