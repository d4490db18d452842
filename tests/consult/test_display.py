"""Elderly mode (larger text, high contrast) from the header's plain form, remembered per account
and per browser; the header's language button in that language's own name; form labels that end
in a full-width question mark get no colon after it; tables that read on a phone; ReDoc served."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from consult.display import COOKIE
from consult.models import Case, User


def html_class(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match is not None
    return match.group(0)


@pytest.mark.django_db
def test_it_remembers_large_text_on_the_account_and_shows_it_on_every_page(
    alice: User, login: Callable[..., Client]
) -> None:
    client = login(alice)
    assert 'class="large-text"' not in html_class(client.get("/cases/").content.decode())
    response = client.post("/display/", {"large_text": "1", "next": "/cases/"})
    assert response.status_code == 302 and response["Location"] == "/cases/"
    alice.refresh_from_db()
    assert alice.large_text is True
    # Another phone, no cookie: the account carries it.
    other = login(alice)
    page = other.get("/cases/").content.decode()
    assert 'class="large-text"' in html_class(page)
    assert 'name="large_text" value="0"' in page  # the switch now offers the way back
    other.post("/display/", {"large_text": "0", "next": "/cases/"})
    alice.refresh_from_db()
    assert alice.large_text is False


@pytest.mark.django_db
def test_it_keeps_large_text_in_a_cookie_for_a_visitor_and_works_without_script() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    home = client.get("/").content.decode()
    # A plain form posting to the switch: nothing needs JavaScript.
    assert re.search(r'<form action="/display/" method="post"', home)
    response = client.post("/display/", {"large_text": "1", "next": "/track/"})
    assert response.status_code == 302 and response["Location"] == "/track/"
    assert response.cookies[COOKIE].value == "1"
    assert 'class="large-text"' in html_class(client.get("/track/").content.decode())
    assert 'class="large-text"' not in html_class(Client().get("/track/").content.decode())


@pytest.mark.django_db
def test_it_never_sends_the_switch_back_to_another_site() -> None:
    response = Client().post("/display/", {"large_text": "1", "next": "https://evil.example/"})
    assert response["Location"] == "/"


@pytest.mark.django_db
def test_it_names_the_other_language_in_its_own_words() -> None:
    zh_page = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get("/").content.decode()
    assert 'lang="en">English</button>' in zh_page and "英语" not in zh_page
    en_page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/").content.decode()
    assert 'lang="zh-hans">简体中文</button>' in en_page


@pytest.mark.django_db
def test_it_puts_no_colon_after_a_label_that_ends_in_a_question_mark(
    alice: User, login: Callable[..., Client], respiratory: object
) -> None:
    page = login(alice).get(f"/services/{respiratory.code}/new/").content.decode()  # type: ignore[attr-defined]
    labels = re.findall(r"<label[^>]*>([^<]*)</label>", page)
    assert labels, page
    doubled = [label for label in labels if re.search(r"[？?！!。.]\s*[:：]$", label)]
    assert doubled == []
    assert any(label.endswith("：") for label in labels)  # the others keep the Chinese colon


@pytest.mark.django_db
def test_it_heads_every_figure_with_its_column_for_a_phone(case: Case) -> None:
    page = Client(HTTP_ACCEPT_LANGUAGE="en").get("/figures/").content.decode()
    cells = re.findall(r"<td( [^>]*)?>", page)
    assert cells
    unlabelled = [cell for cell in cells if "data-label" not in (cell or "") and "colspan" not in (cell or "")]
    assert unlabelled == []
    assert 'data-label="Median wait (hours)"' in page


@pytest.mark.django_db
def test_it_heads_every_dashboard_cell_with_its_column(
    coordinator: User, case: Case, login: Callable[..., Client]
) -> None:
    page = login(coordinator, "en").get("/coordinator/").content.decode()
    assert f'<td data-label="Reference"><a href="/cases/{case.reference}/">' in page
    assert 'data-label="Waiting"' in page


@pytest.mark.django_db
def test_it_serves_redoc_and_swagger_ui_from_its_own_static_files() -> None:
    for path in ("/api/v1/docs/", "/api/v1/redoc/"):
        response = Client().get(path)
        assert response.status_code == 200, path
        page = response.content.decode()
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert sources and all(s.startswith("/") for s in sources), (path, sources)
        assert "googleapis" not in page and "cdn" not in page.lower()
    # Scripts stay this site's on the ReDoc page; only the styles it writes itself are let in.
    policy = Client().get("/api/v1/redoc/")["Content-Security-Policy"]
    assert "script-src 'self';" in policy + ";" and "'unsafe-inline'" in policy.split("style-src")[1].split(";")[0]
