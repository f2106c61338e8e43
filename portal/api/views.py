"""The API's operations, one module per subject; importing them declares them."""

from portal.api import openapi, views_contacts, views_groups, views_imports  # noqa: F401
