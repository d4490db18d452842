from __future__ import annotations

from django.urls import path

from medical import views

app_name = "medical"

urlpatterns = [
    path("cases/<str:reference>/note/", views.note_edit, name="note_edit"),
    path("cases/<str:reference>/visits/", views.visit_request, name="visit_request"),
    path("cases/<str:reference>/refer/", views.refer, name="refer"),
    path("cases/<str:reference>/suggest-referral/", views.suggest_referral, name="suggest_referral"),
    path(
        "cases/<str:reference>/visits/<int:visit_id>/<str:action>/",
        views.visit_update,
        name="visit_update",
    ),
]
