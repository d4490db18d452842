# Loaded with Django, so `shared_task` jobs bind to this app (and publish through its broker).
from consult.celery import app as celery_app

__all__ = ("celery_app",)
