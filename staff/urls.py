from __future__ import annotations

from django.urls import path

from staff import views

app_name = "staff"

urlpatterns = [
    path("verify/", views.verify, name="verify"),
    path("enrol/", views.enrol, name="enrol"),
    path("recovery-codes/", views.recovery, name="recovery"),
]
