from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def platform(request: HttpRequest) -> dict[str, Any]:
    return {"upload_max_mb": settings.UPLOAD_MAX_FILE_BYTES // (1024 * 1024)}
