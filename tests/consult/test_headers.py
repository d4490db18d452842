"""The headers every page and API answer carries (consult/headers.py): a strict
Content-Security-Policy, a Permissions-Policy that opens camera and microphone only on a case's
own page, and `Cache-Control: no-store` on everything that shows a case or a person, downloads
included. The templates themselves hold no inline script, handler or style the policy would block
(tests/e2e/test_content_security_policy.py checks the pages in a real browser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from consult import services
from consult.models import Case, Professional, User
from tests.api.conftest import token_client, token_for
from tests.consult import files_corpus as corpus

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture(autouse=True)
def private_storage(settings: Any, tmp_path: Path) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }


def directives(response: Any) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def test_it_sends_a_policy_without_inline_script_or_style_and_with_the_hosts_websocket(
    login: Callable[..., Client], alice: User, case: Case
) -> None:
    response = login(alice).get(reverse("case_detail", args=[case.reference]))

    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_it_names_wss_for_a_page_served_over_https(client: Client, db: Any) -> None:
    response = client.get("/", secure=True)

    assert directives(response)["connect-src"] == ["'self'", "wss://testserver"]


def test_it_allows_camera_and_microphone_on_a_case_page_only(
    login: Callable[..., Client], alice: User, case: Case
) -> None:
    client = login(alice)
    on_case = client.get(reverse("case_detail", args=[case.reference]))["Permissions-Policy"]
    elsewhere = {path: client.get(path)["Permissions-Policy"] for path in ("/", "/cases/", "/figures/")}

    assert "camera=(self)" in on_case and "microphone=(self)" in on_case
    assert "geolocation=()" in on_case and "payment=()" in on_case
    for policy in elsewhere.values():
        assert "camera=()" in policy and "microphone=()" in policy and "geolocation=()" in policy
        assert "payment=()" in policy and "usb=()" in policy


def no_store(response: Any) -> bool:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    return {"no-store", "private"} <= directives and "public" not in directives


def test_it_forbids_storing_every_page_that_shows_a_case_or_a_person(
    login: Callable[..., Client], alice: User, doctor: Professional, coordinator: User, case: Case
) -> None:
    services.case_accept(case=case, professional=doctor)
    document, _new = services.document_add(
        case=case, uploader=alice, upload=SimpleUploadedFile("r.pdf", corpus.pdf()), name="r.pdf", kind="exam_report"
    )
    resident, professional, desk = login(alice), login(doctor.user), login(coordinator)
    answers = {
        "case page": resident.get(reverse("case_detail", args=[case.reference])),
        "my cases": resident.get(reverse("my_cases")),
        "download": resident.get(reverse("document_download", args=[case.reference, document.pk])),
        "receipt": resident.get(reverse("receipt", args=[case.reference])),
        "queue": professional.get(reverse("work_queue")),
        "dashboard": desk.get(reverse("dashboard")),
        "report csv": desk.get(reverse("report_csv")),
        "admin": desk.get(f"/admin/consult/case/{case.pk}/change/"),
        "home signed in": resident.get("/"),
        "tracking": Client().get(reverse("track"), {"ref": case.reference}),
    }
    api = token_client(token_for(alice))
    answers["api case"] = api.get(f"/api/v1/cases/{case.reference}/")
    answers["api download"] = api.get(f"/api/v1/cases/{case.reference}/documents/{document.pk}/")

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 200)
    assert [name for name, r in answers.items() if not no_store(r)] == []


def test_it_keeps_a_public_answers_own_caching_only_for_anonymous_callers(
    login: Callable[..., Client], alice: User, case: Case
) -> None:
    # The public figures say nothing of anyone; an anonymous answer without a Cache-Control of its
    # own still gets no-store (it may carry a CSRF token), so there is nothing to keep.
    assert no_store(Client().get("/figures/"))
    assert no_store(login(alice).get("/figures/"))


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> block"),
    (re.compile(r"\sstyle=", re.I), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_it_keeps_every_page_template_free_of_inline_script_and_style() -> None:
    # templates/pdf are printed by WeasyPrint, never served as pages; e-mails are text.
    pages = [p for p in TEMPLATES.rglob("*.html") if "pdf" not in p.relative_to(TEMPLATES).parts]
    found = [
        f"{path.relative_to(TEMPLATES)}: {what}"
        for path in pages
        for pattern, what in INLINE
        if pattern.search(path.read_text(encoding="utf-8"))
    ]

    assert len(pages) > 40
    assert found == []
