"""QR posters (scanned from the printed page, followed to a case that remembers the place) and
the resident's rating of a closed case."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import translation

from consult import figures, selectors
from consult import services as core
from consult.errors import CaseError
from consult.models import Case, Poster, Professional, Rating, Skill, Status, User
from medical.services import note_save
from tests.conftest import PASSWORD
from tests.consult.qr import decode_pdf
from tests.consult.test_journey import intake_data

# Spaces to tidy, and characters that must be escaped in a URL.
TYPED_PLACE = "  青山村村委会   & 卫生室 #2 "
PLACE = "青山村村委会 & 卫生室 #2"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def _t(message: str) -> str:
    with translation.override("en"):
        return translation.gettext(message)


def body(response: Any) -> str:
    return html.unescape(response.content.decode())


# --- posters ---------------------------------------------------------------------------------


@pytest.fixture
def poster_pdf(respiratory: Skill, coordinator: User, login: Callable[..., Client]) -> bytes:
    """A coordinator makes a poster on the posters page and gets its PDF."""
    client = login(coordinator)
    made = client.post(reverse("posters"), {"skill": respiratory.pk, "place": TYPED_PLACE})
    poster = Poster.objects.get()
    assert made.status_code == 302
    assert made["Location"] == reverse("poster_pdf", args=[poster.pk])
    response = client.get(made["Location"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    return bytes(response.content)


def test_it_prints_a_poster_whose_qr_code_opens_the_service_intake_naming_the_place(
    poster_pdf: bytes, respiratory: Skill
) -> None:
    [url] = decode_pdf(poster_pdf)

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == settings.SITE_URL
    assert parts.path == reverse("case_new", args=[respiratory.code])
    assert parse_qs(parts.query) == {"place": [PLACE]}


def test_it_records_the_place_on_the_case_a_resident_opens_from_the_poster(
    poster_pdf: bytes, respiratory: Skill, alice: User, doctor: Professional, coordinator: User,
    login: Callable[..., Client],
) -> None:
    [url] = decode_pdf(poster_pdf)
    parts = urlsplit(url)
    scanned = f"{parts.path}?{parts.query}"
    phone = login(None)

    # Not logged in yet: the service's page, whose sign-up and log-in bring her back to the very
    # same address.
    landing = phone.get(scanned)
    assert landing.status_code == 200
    assert landing.context["next"] == scanned
    to_login = f"{reverse('login')}?next={quote(scanned)}"
    assert f'href="{to_login}"' in landing.content.decode()
    logged_in = phone.post(to_login, {"username": alice.phone, "password": PASSWORD, "next": scanned})
    assert logged_in["Location"] == scanned

    intake = phone.get(scanned)
    assert intake.status_code == 200
    # The form posts back to the address it was opened at, place included.
    form_tag = next(line for line in intake.content.decode().splitlines() if "data-intake" in line)
    assert "action=" not in form_tag
    sent = phone.post(scanned, intake_data(intake.context["form"], respiratory, "咳嗽两周。"))
    assert sent.status_code == 302

    case = Case.objects.get(resident=alice)
    assert case.source_place == PLACE
    assert selectors.cases_by_place() == [
        {"source_place": PLACE, "skill__name_zh": "呼吸科", "skill__name_en": "Respiratory medicine", "n": 1}
    ]
    posters_page = body(login(coordinator).get(reverse("posters")))
    assert f"<tr><td>{PLACE}</td><td>呼吸科</td><td>1</td></tr>" in posters_page


def test_it_counts_cases_by_place_most_first_leaving_out_cases_from_no_poster(
    alice: User, bob: User, respiratory: Skill, doctor: Professional
) -> None:
    for resident, place in [(alice, "市医院大厅"), (bob, PLACE), (alice, PLACE), (bob, "")]:
        core.case_submit(resident=resident, skill=respiratory, description="头晕。", source_place=place)

    assert [(row["source_place"], row["n"]) for row in selectors.cases_by_place()] == [(PLACE, 2), ("市医院大厅", 1)]


@pytest.mark.parametrize("who", ["alice", "doctor", "lawyer"])
def test_it_lets_only_coordinators_make_and_print_posters(
    who: str, respiratory: Skill, coordinator: User, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    poster = core.poster_create(skill=respiratory, place=PLACE, user=coordinator)
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person
    client = login(user)

    assert client.get(reverse("posters")).status_code == 404
    assert client.post(reverse("posters"), {"skill": respiratory.pk, "place": "别处"}).status_code == 404
    assert client.get(reverse("poster_pdf", args=[poster.pk])).status_code == 404
    with pytest.raises(CaseError):
        core.poster_create(skill=respiratory, place="别处", user=user)
    assert list(Poster.objects.values_list("place", flat=True)) == [PLACE]


def test_it_sends_an_anonymous_visitor_of_the_posters_to_the_login_page(
    respiratory: Skill, coordinator: User, login: Callable[..., Client]
) -> None:
    poster = core.poster_create(skill=respiratory, place=PLACE, user=coordinator)

    for page in (reverse("posters"), reverse("poster_pdf", args=[poster.pk])):
        response = login(None).get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


# --- ratings ---------------------------------------------------------------------------------


@pytest.fixture
def resolved_case(case: Case, doctor: Professional) -> Case:
    core.case_accept(case=case, professional=doctor)
    note_save(case=case, professional=doctor, findings="胸片未见异常。", impression="急性支气管炎。", advice="多喝水。")
    return core.case_resolve(case=case, professional=doctor)


@pytest.fixture
def closed_case(resolved_case: Case, doctor: Professional) -> Case:
    return core.case_close(case=resolved_case, user=doctor.user)


@pytest.fixture
def as_alice(alice: User, login: Callable[..., Client]) -> Client:
    client: Client = login(alice, "en")
    return client


def asks_for_rating(client: Client, case: Case) -> bool:
    response = client.get(reverse("case_detail", args=[case.reference]))
    assert response.status_code == 200
    return 'id="rating"' in response.content.decode()


def rate(client: Client, case: Case, **data: Any) -> Any:
    return client.post(reverse("rate", args=[case.reference]), data, follow=True)


def test_it_asks_the_resident_to_rate_a_closed_case_once(closed_case: Case, as_alice: Client) -> None:
    assert asks_for_rating(as_alice, closed_case)

    response = rate(as_alice, closed_case, score="4", comment=" 医生很耐心。 ")

    assert _t("Thank you for your rating!") in body(response)
    rating = Rating.objects.get(case=closed_case)
    assert (rating.score, rating.comment) == (4, "医生很耐心。")
    assert not asks_for_rating(as_alice, closed_case)


def test_it_does_not_ask_for_a_rating_before_the_case_is_closed(resolved_case: Case, as_alice: Client) -> None:
    assert not asks_for_rating(as_alice, resolved_case)

    response = rate(as_alice, resolved_case, score="5")

    assert _t("A case can be rated once it is closed.") in body(response)
    assert not Rating.objects.exists()


def test_it_does_not_ask_for_a_rating_of_a_withdrawn_case(case: Case, alice: User, as_alice: Client) -> None:
    core.case_withdraw(case=case, resident=alice)
    assert not asks_for_rating(as_alice, case)

    for data in ({"score": "5"}, {"skip": "1"}):
        response = rate(as_alice, case, **data)
        assert _t("A case can be rated once it is closed.") in body(response)
    assert not Rating.objects.exists()


def test_it_lets_the_resident_skip_the_rating_and_never_asks_again(closed_case: Case, as_alice: Client) -> None:
    response = rate(as_alice, closed_case, skip="1")

    assert _t("All right. We will not ask again.") in body(response)
    assert Rating.objects.get(case=closed_case).score is None
    assert not asks_for_rating(as_alice, closed_case)
    # A score sent afterwards (an old tab) is refused: skipping was the answer.
    late = rate(as_alice, closed_case, score="5")
    assert _t("This case has already been rated. Thank you!") in body(late)
    assert Rating.objects.get(case=closed_case).score is None


def test_it_refuses_a_second_rating_of_the_same_case(closed_case: Case, as_alice: Client) -> None:
    rate(as_alice, closed_case, score="5")

    response = rate(as_alice, closed_case, score="1")

    assert _t("This case has already been rated. Thank you!") in body(response)
    assert list(Rating.objects.values_list("score", flat=True)) == [5]


@pytest.mark.parametrize("who", ["bob", "other_doctor", "lawyer"])
def test_it_hides_the_rating_from_people_who_cannot_see_the_case(
    closed_case: Case, who: str, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person

    response = login(user).post(reverse("rate", args=[closed_case.reference]), {"score": "1"})

    assert response.status_code == 404
    assert not Rating.objects.exists()


@pytest.mark.parametrize("who", ["doctor", "coordinator"])
def test_it_refuses_a_rating_from_anyone_on_the_case_but_its_resident(
    closed_case: Case, who: str, request: pytest.FixtureRequest, login: Callable[..., Client]
) -> None:
    person = request.getfixturevalue(who)
    user = person.user if isinstance(person, Professional) else person
    client = login(user, "en")
    assert not asks_for_rating(client, closed_case)

    for data in ({"score": "5"}, {"skip": "1"}):
        response = client.post(reverse("rate", args=[closed_case.reference]), data, follow=True)
        assert _t("Only the resident who opened the case can rate it.") in body(response)
    assert not Rating.objects.exists()


@pytest.mark.parametrize("score", ["0", "6", "-1", "4.5", "五", ""])
def test_it_refuses_a_score_outside_1_to_5(closed_case: Case, as_alice: Client, score: str) -> None:
    response = rate(as_alice, closed_case, score=score)

    assert _t("Choose from 1 to 5 stars, or skip.") in body(response)
    assert not Rating.objects.exists()
    assert asks_for_rating(as_alice, closed_case)


@pytest.mark.parametrize("score", [0, 6])
def test_it_refuses_a_score_outside_1_to_5_in_the_service_too(closed_case: Case, alice: User, score: int) -> None:
    with pytest.raises(ValidationError):
        core.rating_submit(case=closed_case, resident=alice, score=score)

    assert not Rating.objects.exists()


def test_it_counts_ratings_in_the_satisfaction_figure_but_not_skipped_ones(
    closed_case: Case, bob: User, respiratory: Skill, as_alice: Client, login: Callable[..., Client]
) -> None:
    rate(as_alice, closed_case, score="5")
    others = [
        core.case_submit(resident=bob, skill=respiratory, description=f"第{n}次。", source_place="") for n in range(2)
    ]
    Case.objects.filter(pk__in=[c.pk for c in others]).update(status=Status.CLOSED)
    rate(login(bob), others[0], score="2")
    rate(login(bob), others[1], skip="1")

    result = figures.compute()

    assert (result.rated, result.satisfied, result.satisfaction_rate) == (2, 1, Decimal("50.0"))
    page = login(None, "en").get(reverse("figures")).content.decode()
    assert '<span class="n">50.0%</span><span>satisfied (rated 4 or 5)</span>' in page
