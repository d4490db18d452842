"""The API's ReDoc page, served like Swagger UI from drf-spectacular-sidecar's static files.

ReDoc styles itself with styled-components, which writes <style> elements at run time; under
`style-src 'self'` it stops with its error #17. This one page lets inline styles in, and workers
its own script makes from a blob (the search index): scripts stay 'self', every file still comes
from this site, and the page shows the public schema and nobody's data. The bundle's one outside
address, its vendor's logo in the side menu, is never asked for (static/js/redoc_local.js).
"""

from __future__ import annotations

from csp.decorators import csp_update
from drf_spectacular.views import SpectacularRedocView

redoc_view = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})(
    SpectacularRedocView.as_view(url_name="api:schema", template_name="consult/api_redoc.html")
)
