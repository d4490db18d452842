"""The catalogue: grouped by domain, short cards that open each service, a search that is a plain GET."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client
from django.urls import reverse

from consult.models import Skill


def test_it_groups_the_services_and_links_each_card_to_its_page(
    respiratory: Skill, sick_pay: Skill, login: Callable[..., Client]
) -> None:
    page = login(None).get(reverse("home")).content.decode()

    medical, legal = page.index('id="catalogue-medical"'), page.index('id="catalogue-legal"')
    assert medical < page.index(respiratory.name_zh) < legal < page.index(sick_pay.name_zh)
    assert f'href="{reverse("case_new", args=[respiratory.code])}"' in page


def test_it_finds_a_service_by_a_word_of_its_name_in_either_language(
    respiratory: Skill, sick_pay: Skill, login: Callable[..., Client]
) -> None:
    client = login(None)

    for query in ("病假", "sick"):
        page = client.get(reverse("home"), {"q": query}).content.decode()
        assert sick_pay.name_zh in page
        assert respiratory.name_zh not in page
        assert 'id="catalogue-medical"' not in page


def test_it_says_so_when_nothing_matches_and_offers_the_whole_list(
    respiratory: Skill, login: Callable[..., Client]
) -> None:
    page = login(None, "en").get(reverse("home"), {"q": "astrology"}).content.decode()

    assert "No service matches" in page
    assert f'href="{reverse("home")}"' in page
    assert respiratory.name_en not in page
