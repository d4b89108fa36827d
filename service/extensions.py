"""Extension singletons, initialised inside ``create_app`` (one of each per process).

``db`` is the models' own (models/base.py), re-exported so the app and domain import it here.
"""
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from models.base import Base, db  # noqa: F401 — the models own them; re-exported here
from service.openapi import ErrorResponses, HcpApi

migrate = Migrate()
api = HcpApi(spec_kwargs={"extra_plugins": [ErrorResponses()]})
login = LoginManager()
csrf = CSRFProtect()
