"""The fuzz farm: Celery workers and the campaign coordinator."""
