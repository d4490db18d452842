from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import api as accounts_api
from consult.api import views
from consult.api.docs import redoc_view
from legal.api import LegalCaseCreateView, OutcomeView
from medical.api import MedicalCaseCreateView, NoteView
from privacy import api as privacy_api

app_name = "api"

case = "cases/<str:reference>/"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    # Served with its start-up script as a second request of its own (no inline script), from
    # drf-spectacular-sidecar's static files (SPECTACULAR_SETTINGS), never a CDN.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="consult/api_docs.html"),
        name="docs",
    ),
    # ReDoc from the same static files; the styles it writes at run time are the one thing its
    # page lets in inline (consult/api/docs.py).
    path("redoc/", redoc_view, name="redoc"),
    path("auth/token/", views.LoginView.as_view(), name="login"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/logout/all/", accounts_api.LogoutEverywhereView.as_view(), name="logout-all"),
    path("auth/code/", accounts_api.CodeRequestView.as_view(), name="code"),
    path("auth/code/token/", accounts_api.CodeLoginView.as_view(), name="code-login"),
    path("auth/signup/", accounts_api.SignupView.as_view(), name="signup"),
    path("auth/password/reset/", accounts_api.PasswordResetView.as_view(), name="password-reset"),
    path("auth/phone/", accounts_api.PhoneChangeView.as_view(), name="phone-change"),
    path("services/", views.ServiceListView.as_view(), name="services"),
    path("track/", views.TrackView.as_view(), name="track"),
    path("figures/", views.FiguresView.as_view(), name="figures"),
    path("consents/<str:purpose>/", privacy_api.ConsentTextView.as_view(), name="consent-text"),
    path("me/export/", privacy_api.ExportView.as_view(), name="export"),
    path("erasure/", privacy_api.ErasureListView.as_view(), name="erasure-requests"),
    path("cases/", views.CaseListView.as_view(), name="cases"),
    path("cases/medical/", MedicalCaseCreateView.as_view(), name="case-create-medical"),
    path("cases/legal/", LegalCaseCreateView.as_view(), name="case-create-legal"),
    path(case, views.CaseDetailView.as_view(), name="case-detail"),
    *[
        path(f"{case}{action}/", views.CaseActionView.as_view(action_name=action), name=f"case-{action}")
        for action in ("accept", "decline", "resolve", "close", "withdraw")
    ],
    path(f"{case}note/", NoteView.as_view(), name="case-note"),
    path(f"{case}outcome/", OutcomeView.as_view(), name="case-outcome"),
    path(f"{case}rating/", views.RatingView.as_view(), name="case-rating"),
    path(f"{case}erasure/", privacy_api.ErasureAskView.as_view(), name="case-erasure"),
    path(f"{case}erasure/decide/", privacy_api.ErasureDecideView.as_view(), name="case-erasure-decide"),
    path(f"{case}documents/", views.DocumentListView.as_view(), name="documents"),
    path(f"{case}documents/<int:document_id>/", views.DocumentDownloadView.as_view(), name="document-download"),
    path(f"{case}messages/", views.MessageListView.as_view(), name="messages"),
    path(f"{case}messages/voice/", views.VoiceMessageView.as_view(), name="voice-message"),
    path("queue/", views.QueueView.as_view(), name="queue"),
    path("queue/claim/", views.ClaimNextView.as_view(), name="queue-claim"),
    path("queue/on-duty/", views.OnDutyView.as_view(), name="queue-on-duty"),
    re_path(r"^", views.not_found, name="not-found"),
]
