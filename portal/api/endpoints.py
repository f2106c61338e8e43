"""The JSON API's operations, one module per subject (endpoints_*.py); importing them
declares them. The API's HTML page (keys) is views.py, as in every other area."""

from portal.api import endpoints_contacts, endpoints_groups, endpoints_imports, openapi  # noqa: F401
