"""Entry point for `flask --app app` and `gunicorn app:app`."""

from portal import create_app
from portal.config import StartRefused, refuse_start

try:
    app = create_app()
except StartRefused as exc:  # one line and a non-zero exit, not a traceback
    refuse_start(exc)
