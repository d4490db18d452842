"""With DEBUG off, a missing page, a refused page and an expired form are the site's own pages,
in the request's language, with a way back: never Django's bare English "Not Found"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from consult.models import Case, User


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(("language", "title"), [("zh-hans", "找不到这个页面"), ("en", "Page not found")])
def test_it_answers_a_missing_page_with_a_translated_page_and_a_way_home(language: str, title: str) -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE=language).get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert title in page and f'lang="{language}"' in page
    assert 'href="/"' in page
    assert "Not Found</h1>" not in page


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
def test_it_answers_someone_elses_case_with_the_same_page_and_a_link_to_their_own(
    bob: User, case: Case, login: Callable[..., Client]
) -> None:
    response = login(bob).get(f"/cases/{case.reference}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "找不到这个页面" in page and 'href="/cases/"' in page


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(("language", "title"), [("zh-hans", "无权访问"), ("en", "Not allowed")])
def test_it_answers_a_refused_page_with_a_translated_page(
    language: str, title: str, settings: Any
) -> None:
    from django.core.exceptions import PermissionDenied
    from django.urls import path

    from consult import urls as project_urls

    def refuse(request: Any) -> Any:
        raise PermissionDenied

    # No page of the project refuses with a bare 403 today (they answer 404 or redirect to log
    # in): one is added, next to all the project's pages the error page links to.
    class Urls:
        urlpatterns = [path("refused/", refuse), *project_urls.urlpatterns]

    settings.ROOT_URLCONF = Urls
    response = Client(HTTP_ACCEPT_LANGUAGE=language).get("/refused/")
    assert response.status_code == 403
    page = response.content.decode()
    assert title in page and f'lang="{language}"' in page and 'href="/accounts/login/?next=/refused/"' in page


@pytest.mark.django_db
@pytest.mark.usefixtures("production")
def test_it_answers_an_expired_form_with_a_translated_page() -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans", enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "13800000000", "password": "x"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "表单已过期" in page and 'href="/"' in page
