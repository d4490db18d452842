from __future__ import annotations

from typing import Any

from consult.domains import domain_of
from consult.models import Case, User


def domain_data(case: Case, user: User) -> dict[str, Any]:
    """What the case's domain adds to its API detail (intake, note, estimate, outcome...)."""
    domain = domain_of(case)
    return domain.api_data(case, user) if domain else {}
