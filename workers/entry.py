"""The module ``celery -A workers`` ends up in: one Flask app, and its Celery app."""
from service import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
