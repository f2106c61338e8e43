"""The application factory."""

from __future__ import annotations

import logging

from flask import Flask, g, request
from flask_babel import lazy_gettext as _l

from portal.config import ROOT, build_config
from portal.extensions import babel, bootstrap, csrf, db, limiter, login_manager, migrate

# the only answers a cache may keep: the portal's own static files and Bootstrap's
CACHEABLE_ENDPOINTS = frozenset({"static", "bootstrap.static"})


def create_app(overrides: dict | None = None) -> Flask:
    config = build_config(overrides)
    app = Flask(
        __name__,
        instance_path=config["INSTANCE_PATH"],
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(config)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    _init_extensions(app)
    _init_areas(app)
    _register_hooks(app)
    _register_errors(app)

    from portal.cli import register_cli

    register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    # imported here, not at the top: `import portal.clock` (a worker, a migration, a
    # script) must not build the whole app
    from portal import i18n, jobs, models  # noqa: F401 - models register their tables
    from portal.database_setup import configure_engine

    db.init_app(app)
    configure_engine(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    bootstrap.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    jobs.init_app(app)
    if app.config["REDIS_URL"] and not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    limiter.init_app(app)

    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"


def _init_areas(app: Flask) -> None:
    """The one place the areas are wired into the app, lowest layer first (the layers:
    docs/architecture.md). Each init_app registers the area's pages and connects its
    receivers of portal.core.signals; nothing is wired by being imported."""
    from portal.accounts import wiring as accounts
    from portal.api import wiring as api
    from portal.backups import wiring as backups
    from portal.contacts import wiring as contacts
    from portal.health import bp as health_bp
    from portal.imports import wiring as imports
    from portal.integrations import wiring as integrations
    from portal.jobs import cron
    from portal.lifecycle import wiring as lifecycle
    from portal.support import wiring as support
    from portal.support.describe import TEXTS_KEY, merge_texts

    app.register_blueprint(health_bp)  # /healthz
    accounts.init_app(app)  # sign-in, team, settings, the account's home
    contacts.init_app(app)  # list, card, groups
    imports.init_app(app)  # upload, mapping, check, progress, report
    lifecycle.init_app(app)  # delete/restore/forget buttons on the contacts pages; /f/ form
    backups.init_app(app)  # a snapshot before a portal import and a group's deletion
    integrations.init_app(app)  # the outbox of contact changes; exports withdrawn on erasure
    api.init_app(app)  # /api/v1 and the API key pages
    support.init_app(app)  # /support/ console and its staff actions
    app.extensions[TEXTS_KEY] = merge_texts(
        accounts.AUDIT_TEXTS,
        contacts.AUDIT_TEXTS,
        imports.AUDIT_TEXTS,
        lifecycle.AUDIT_TEXTS,
        backups.AUDIT_TEXTS,
        integrations.AUDIT_TEXTS,
        api.AUDIT_TEXTS,
        support.AUDIT_TEXTS,
    )
    cron.register_all()  # the cron table names tasks of every area


def _register_hooks(app: Flask) -> None:
    from portal import error_pages, i18n
    from portal.template_helpers import register_template_helpers
    from portal.tenancy import refuse_impossible_url_ids

    app.url_value_preprocessor(refuse_impossible_url_ids)
    app.before_request(error_pages.refuse_nul_characters)
    app.before_request(i18n.remember_requested_language)
    register_template_helpers(app)

    @app.teardown_request
    def _no_account_leak(exc):
        g.pop("account", None)

    @app.after_request
    def security_headers(response):
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            # pages, files and JSON carry personal data: no browser, proxy or "back"
            # button may keep a copy (downloads included, which send_file would mark
            # cacheable); only the portal's own CSS and JavaScript are cached
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if not g.get("frameable"):  # the public sign-up form may sit in the customer's page
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'self'",
        )
        return response


def _register_errors(app: Flask) -> None:
    from portal import error_pages

    error_pages.init_app(app)
