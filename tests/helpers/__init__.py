"""Shared test helpers, imported by test modules and conftest files alike.

A conftest.py is a pytest plugin, not a library: what several test modules need (signing
in, the web-process app, one database and Redis per xdist worker) lives here, so no test
imports from tests.conftest."""
