"""Optional error reports to Sentry (or a self-hosted Sentry, or anything speaking its protocol),
switched on by SENTRY_DSN. Cases are medical and legal records: no personal data is sent (no user,
no address, no cookies, no request body, no headers but a few harmless ones), only the error, where
it happened, the page's path and the request id to find its log lines."""

from __future__ import annotations

from typing import Any

# Request headers that say nothing about the person; the others (cookies, tokens, forwarded
# addresses, the referring page with its case reference) are dropped.
KEPT_HEADERS = {"accept", "accept-language", "content-length", "content-type", "host", "user-agent", "x-request-id"}


def scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Sentry's before_send: whatever the integrations gathered, only the harmless parts leave."""
    from consult.logs import NONE, request_id

    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": request.get("url"),
            "headers": {k: v for k, v in headers.items() if k.lower() in KEPT_HEADERS},
        }
    # Log lines and queries gathered before the error can quote what a resident wrote.
    for part in ("user", "extra", "breadcrumbs"):
        event.pop(part, None)
    current = request_id.get()
    if current != NONE:
        event.setdefault("tags", {})["request_id"] = current
    return event


def init(*, dsn: str, environment: str, release: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        # Local variables of a frame can hold a resident's words: not sent.
        include_local_variables=False,
        before_send=scrub,  # type: ignore[arg-type]
        traces_sample_rate=0.0,
    )
