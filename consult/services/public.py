"""What the public sees and gives back: ratings of closed cases, and QR posters for notices."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from consult import limits
from consult.errors import NotAllowed, WrongState
from consult.models import Case, Poster, Rating, Skill, Status, User
from consult.selectors import Tracked, case_track
from consult.tally import tally_refresh

LOOKED_UP_TOO_OFTEN = _(
    "This case has been looked up too many times today. Please try again tomorrow, or log in to see it."
)


def case_track_counted(*, reference: str, phone_last4: str) -> Tracked | None:
    """case_track, counted per reference whatever the address (the callers count per address
    first): guessing a case's four phone digits from many addresses gets a few tries a day, not
    10,000. Every lookup counts, the right pair too, so the count cannot tell a guesser which one
    was right. Raises limits.RateLimited."""
    try:
        limits.take("tracking_reference", f"reference:{reference.upper()}")
    except limits.RateLimited as limited:
        raise limits.RateLimited(limited.scope, limited.retry_after, str(LOOKED_UP_TOO_OFTEN)) from None
    return case_track(reference=reference, phone_last4=phone_last4)


def _rateable(case: Case, resident: User) -> None:
    if case.resident_id != resident.pk:
        raise NotAllowed(_("Only the resident who opened the case can rate it."))
    if case.status != Status.CLOSED:
        raise WrongState(_("A case can be rated once it is closed."))


@transaction.atomic
def rating_submit(*, case: Case, resident: User, score: int, comment: str = "") -> Rating:
    """Rate a closed case, once."""
    _rateable(case, resident)
    rating = Rating(case=case, score=score, comment=comment.strip())
    rating.full_clean(exclude=["case"], validate_unique=False)
    try:
        with transaction.atomic():
            rating.save(force_insert=True)
    except IntegrityError:
        raise WrongState(_("This case has already been rated. Thank you!")) from None
    tally_refresh(case)
    return rating


def rating_skip(*, case: Case, resident: User) -> None:
    """Not now, and not again: a skipped rating is a rating without a score."""
    _rateable(case, resident)
    # A skipped rating counts for nothing: the tally stays as it is.
    Rating.objects.get_or_create(case=case, defaults={"score": None})


@transaction.atomic
def poster_create(*, skill: Skill, place: str, user: User) -> Poster:
    if not user.is_coordinator:
        raise NotAllowed(_("Only coordinators make posters."))
    place = " ".join(place.split())
    poster = Poster(skill=skill, place=place, created_by=user)
    poster.full_clean(exclude=["skill", "created_by"])
    poster.save()
    return poster


def poster_url(poster: Poster) -> str:
    """The address the poster's QR code holds: the service's intake, naming the place."""
    path = reverse("case_new", args=[poster.skill.code])
    return f"{settings.SITE_URL}{path}?{urlencode({'place': poster.place})}"


def poster_pdf(poster: Poster) -> bytes:
    """An A4 notice, Chinese first with English beneath, to print and pin up."""
    from consult.pdf import qr_svg, render_pdf

    url = poster_url(poster)
    context: dict[str, Any] = {
        "poster": poster,
        "url": url,
        "qr": qr_svg(url, scale=10),
        "generated_at": timezone.now(),
    }
    names = {}
    for language in ("zh-hans", "en"):
        with translation.override(language):
            names[language] = {
                "name": poster.skill.name,
                "materials": poster.skill.materials,
                "office": poster.skill.office,
            }
    context["zh"], context["en"] = names["zh-hans"], names["en"]
    with translation.override("zh-hans"):
        return render_pdf("pdf/poster.html", context)
