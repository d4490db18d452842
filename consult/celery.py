"""The Celery application: `celery -A consult worker` and `celery -A consult beat`.

Its configuration is the CELERY_* settings in consult/settings.py; tasks live in each app's
`tasks.py` and run on jobs.base.Job.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consult.settings")

app = Celery("consult")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The request id of the page or socket that queued a job follows it into the worker's log lines.
from consult.logs import connect_task_signals  # noqa: E402

connect_task_signals()
