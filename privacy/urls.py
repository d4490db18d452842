from __future__ import annotations

from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("export/", views.export, name="export"),
    path("erasure/", views.erasure_list, name="erasure_list"),
    path("cases/<str:reference>/erasure/", views.erasure_ask, name="erasure_ask"),
    path("cases/<str:reference>/erasure/decide/", views.erasure_decide, name="erasure_decide"),
]
