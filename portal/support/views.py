"""The support console under /support/, for users with is_staff only.

Everyone else gets a 404 on every /support/ address — anonymous visitors too (no
redirect to the sign-in page, which would tell them the console exists), and POSTs
before their CSRF token is even looked at (the blueprint is exempt from the global
check and checks CSRF itself right after the staff check).

An account's pages need an open StaffAccess of the signed-in staff user (a stated
reason, time-limited); without one, or once it has expired, they redirect to the
reason form. Staff never become members, so the customer's own pages (/a/<slug>/...)
stay a 404 for them, and the console offers no "forget me" and no privacy setting.

Staff actions on an opened account are added with add_account_action (the reset of
the account's integration link, issue 9: portal.support.integration_actions) and put their
view on this blueprint with @staff_account_view, so the staff-only 404, the CSRF check,
the access check and the route tests cover it too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal import clock, i18n
from portal.accounts import service as accounts
from portal.accounts.forms import ROLE_LABELS
from portal.accounts.models import Account
from portal.backups import tasks as backup_tasks
from portal.backups import views as backup_views
from portal.backups.models import Backup, RestoreMode
from portal.backups.read import BackupUnreadable, list_backups, live_backup
from portal.backups.restore import RestoreRefused, find_target, restore_preview, restore_running
from portal.backups.undo import UndoRefused, undo_blocker, undo_preview
from portal.contacts.models import Contact
from portal.core.audit import AuditEvent
from portal.core.errors import ServiceError
from portal.extensions import csrf, db
from portal.imports import queries as import_queries
from portal.imports.models import ImportJob
from portal.lifecycle import tasks as lifecycle_tasks
from portal.lifecycle.views import purge_window_text
from portal.support import console, forms
from portal.template_helpers import BACKUP_REASON_LABELS, expiry_text, human_size
from portal.tenancy import id_or_none, owned

bp = Blueprint("support", __name__, url_prefix="/support")
csrf.exempt(bp)  # checked in _staff_only, after the staff check (see the module docstring)


@dataclass(frozen=True)
class SupportAction:
    """A staff action on an opened account, offered by another area. `endpoint` is a
    POST view on this blueprint (decorated with @staff_account_view) that takes `slug`;
    the overview page shows it as a button with `label`, `description` and, when set,
    a confirmation question. `available(account)` hides it where it makes no sense."""

    key: str
    label: Any
    endpoint: str
    description: Any = ""
    confirm: Any = ""
    available: Callable[[Account], bool] = field(default=lambda account: True)


ACTIONS_KEY = "portal.support_account_actions"


def add_account_action(app: Flask, action: SupportAction) -> None:
    """A staff action on the overview of an opened account (the area's init_app adds the
    reset of the provider link, portal.support.integration_actions)."""
    app.extensions.setdefault(ACTIONS_KEY, []).append(action)


ACTOR_LABELS = {
    "user": _l("Team member"),
    "staff": _l("Support"),
    "api_key": _l("API key"),
    "system": _l("System"),
}


def _staff():
    return current_user._get_current_object()


def _ip() -> str | None:
    return request.remote_addr


def _is_staff() -> bool:
    return bool(current_user.is_authenticated and current_user.is_staff)


@bp.before_app_request
def _hide_the_console():
    """Any address below /support/ — also a wrong method, which routing would answer
    with 405 before the blueprint's own hook runs — is a 404 for non-staff."""
    path = request.path
    if (path == "/support" or path.startswith("/support/")) and not _is_staff():
        abort(404)


@bp.before_request
def _staff_only():
    if not _is_staff():
        abort(404)
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    return None


def staff_account_view(view: Callable) -> Callable:
    """For views under /support/accounts/<slug>/: the account (404 if unknown) and the
    staff user's open access to it in g.support_account / g.staff_access; without an
    open access, a redirect to the reason form (nothing is read or changed)."""

    @wraps(view)
    def wrapped(slug: str, **kwargs):
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        if account is None:
            abort(404)
        access = console.current_access(_staff(), account)
        if access is None:
            if console.latest_access(_staff(), account) is not None:
                flash(
                    _(
                        "Your access to this account has ended. Please state the reason "
                        "again to open it."
                    ),
                    "warning",
                )
            else:
                flash(_("Please state why you open this account."), "info")
            return redirect(url_for("support.open_account", slug=account.slug))
        g.support_account = account
        g.staff_access = access
        return view(**kwargs)

    return wrapped


def _viewed(page: str, **details: Any) -> None:
    console.record_view(g.staff_access, page, staff=_staff(), ip=_ip(), **details)
    db.session.commit()


def _render_account(template: str, active: str, **context):
    return render_template(
        template,
        account=g.support_account,
        access=g.staff_access,
        active=active,
        **context,
    )


def _before_arg(model) -> int | None:
    """The page cursor: an id of `model`, or None for anything no such id can be."""
    return id_or_none(model, request.args.get("before"))


# --- start page, search, lookup ---------------------------------------------------------


@bp.route("/")
def index():
    query = (request.args.get("q") or "").strip()[:200]
    return render_template(
        "support/index.html",
        query=query,
        results=console.search_accounts(query) if query else None,
        lookup_form=forms.LookupForm(),
        open_accesses=console.open_accesses(_staff()),
    )


@bp.route("/lookup", methods=["POST"])
def lookup():
    form = forms.LookupForm()
    if form.validate_on_submit():
        try:
            email, matches = console.lookup_email(
                _staff(), form.email.data, form.reason.data, ip=_ip()
            )
        except ServiceError as exc:
            form.email.errors.append(str(exc))
        else:
            db.session.commit()
            return render_template(
                "support/lookup.html",
                email=email,
                matches=matches,
                window_text=purge_window_text,
                reason=form.reason.data,
                lookup_form=form,
            )
    return render_template(
        "support/index.html",
        query="",
        results=None,
        lookup_form=form,
        open_accesses=console.open_accesses(_staff()),
    )


# --- opening and closing an account -----------------------------------------------------


@bp.route("/accounts/<slug>/open", methods=["GET", "POST"])
def open_account(slug: str):
    account = db.session.scalar(select(Account).where(Account.slug == slug))
    if account is None:
        abort(404)
    form = forms.ReasonForm()
    if request.method == "GET" and request.args.get("reason"):
        form.reason.data = request.args["reason"][: console.REASON_MAX]
    if form.validate_on_submit():
        try:
            access = console.open_access(_staff(), account, form.reason.data, ip=_ip())
        except console.AccessRefused as exc:
            form.reason.errors.append(str(exc))
        else:
            db.session.commit()
            flash(
                _(
                    "You have opened the account “%(name)s” until %(until)s. Its owners see "
                    "this access, your name and the reason in their settings.",
                    name=account.name,
                    until=format_datetime(access.expires_at, "short"),
                ),
                "success",
            )
            return redirect(url_for("support.account", slug=account.slug))
    return render_template(
        "support/open.html",
        account=account,
        form=form,
        minutes=console.access_minutes(),
        current=console.current_access(_staff(), account),
    )


@bp.route("/accounts/<slug>/close", methods=["POST"])
@staff_account_view
def close_account():
    console.close_access(g.staff_access, staff=_staff(), ip=_ip())
    db.session.commit()
    flash(_("Your access to “%(name)s” is closed.", name=g.support_account.name), "info")
    return redirect(url_for("support.index"))


# --- an opened account ------------------------------------------------------------------


@bp.route("/accounts/<slug>/")
@staff_account_view
def account():
    account = g.support_account
    _viewed("overview")
    return _render_account(
        "support/account.html",
        "overview",
        counts=console.account_counts(account),
        members=accounts.members(account),
        role_labels=ROLE_LABELS,
        actions=[a for a in current_app.extensions.get(ACTIONS_KEY, []) if a.available(account)],
    )


def _purge_text(contact) -> str:
    window = console.lifecycle.purge_time(contact, g.support_account)
    return purge_window_text(window, g.support_account.timezone) if window else ""


@bp.route("/accounts/<slug>/deleted")
@staff_account_view
def deleted():
    account = g.support_account
    before = _before_arg(Contact)
    contacts = console.pending_deletion(account, before=before)
    _viewed("deleted", count=len(contacts))
    return _render_account(
        "support/deleted.html",
        "deleted",
        contacts=contacts,
        total=console.count_pending(account),
        groups=console.groups_by_contact(account, [c.id for c in contacts]),
        purge_text=_purge_text,
        next_before=contacts[-1].id if len(contacts) == console.PAGE_SIZE else None,
        first_page=before is None,
        jobs=console.undelete_jobs(account),
    )


@bp.route("/accounts/<slug>/deleted/restore", methods=["POST"])
@staff_account_view
def restore_deleted():
    back = url_for("support.deleted", slug=g.support_account.slug)
    if request.form.get("scope") == "all":
        restored, job = console.undelete_all(g.staff_access, staff=_staff(), ip=_ip())
        if job is not None:
            lifecycle_tasks.enqueue(job)  # commits the job row first
            flash(
                ngettext(
                    "%(num)d contact is being restored by a background job.",
                    "%(num)d contacts are being restored by a background job.",
                    job.total,
                ),
                "info",
            )
            return redirect(back)
    else:
        ids = []
        for value in request.form.getlist("ids"):
            try:
                ids.append(int(value))
            except ValueError:
                continue
        if not ids:
            flash(_("Please select at least one contact."), "warning")
            return redirect(back)
        restored = console.undelete_selected(g.staff_access, ids, staff=_staff(), ip=_ip())
    db.session.commit()
    flash(
        ngettext(
            "%(num)d contact restored, with its groups, tags and sign-up and sign-off data.",
            "%(num)d contacts restored, with their groups, tags and sign-up and sign-off data.",
            restored,
        ),
        "success" if restored else "info",
    )
    return redirect(back)


@bp.route("/accounts/<slug>/backups")
@staff_account_view
def backups():

    account = g.support_account
    _viewed("backups")
    now, tz = clock.now(), i18n.current_timezone()
    return _render_account(
        "support/backups.html",
        "backups",
        backups=list_backups(account),
        reason_labels=BACKUP_REASON_LABELS,
        expiry=lambda b: expiry_text(b, now, tz),
        human_size=human_size,
    )


@bp.route("/accounts/<slug>/backups/<int:backup_id>/restore", methods=["GET", "POST"])
@staff_account_view
def restore_backup(backup_id: int):
    """The customer's restore, made by staff: the same confirmation page with its dry run
    (GET) and the same two choices (POST), in the console's frame."""

    account = g.support_account
    backup = owned(Backup, backup_id, account)
    if backup is None:
        abort(404)
    back = url_for("support.backups", slug=account.slug)
    if backup.expires_at <= clock.now():
        flash(_("This backup has expired and is being deleted."), "warning")
        return redirect(back)
    here = url_for("support.restore_backup", slug=account.slug, backup_id=backup.id)
    if request.method == "POST":
        mode = request.form.get("mode", "")
        expected = backup_views.expected_counts(request.form, mode)
        try:
            restore = console.restore_backup(
                g.staff_access, backup, mode=mode, expected=expected, staff=_staff(), ip=_ip()
            )
        except RestoreRefused as exc:
            db.session.rollback()
            flash(str(exc), "warning")
            return redirect(here)
        backup_tasks.enqueue_restore(restore)  # commits the request (and its audit event)
        backup_views.flash_restore_outcome(restore)
        return redirect(back)
    running = restore_running(backup)
    preview = None
    if not running:
        try:
            preview = restore_preview(backup)
        except BackupUnreadable as exc:
            flash(str(exc), "danger")
            return redirect(back)
    _viewed("backups")
    return _render_account(
        "support/confirm_restore.html",
        "backups",
        backup=backup,
        preview=preview,
        running=running,
        target=find_target(backup),
        modes=RestoreMode,
        reason_labels=BACKUP_REASON_LABELS,
        action_url=here,
        list_url=back,
    )


@bp.route("/accounts/<slug>/imports")
@staff_account_view
def imports():

    account = g.support_account
    _viewed("imports")
    jobs = import_queries.history(account)
    undo = {}
    for job in jobs:  # an import that made a backup, or went into an empty group
        if job.group_was_empty or live_backup(account.id, job.backup_id):
            undo[job.id] = undo_blocker(job)
    return _render_account("support/imports.html", "imports", jobs=jobs, undo=undo)


@bp.route("/accounts/<slug>/imports/<int:import_id>/undo", methods=["GET", "POST"])
@staff_account_view
def undo_import(import_id: int):
    """The customer's undo, made by staff: the confirmation page with the undo's dry run
    (GET), then the undo (POST)."""

    account = g.support_account
    job = owned(ImportJob, import_id, account)
    if job is None:
        abort(404)
    back = url_for("support.imports", slug=account.slug)
    if request.method == "GET":
        blocker = undo_blocker(job)
        preview = None
        if blocker is None:
            try:
                preview = undo_preview(job)
            except BackupUnreadable as exc:
                flash(str(exc), "danger")
                return redirect(back)
        _viewed("imports")
        return _render_account(
            "support/confirm_undo.html",
            "imports",
            job=job,
            blocker=blocker,
            preview=preview,
            backup=live_backup(job.account_id, job.backup_id),
            action_url=url_for("support.undo_import", slug=account.slug, import_id=job.id),
            cancel_url=back,
        )
    try:
        undo = console.request_undo(g.staff_access, job, staff=_staff(), ip=_ip())
    except UndoRefused as exc:
        db.session.rollback()
        flash(str(exc), "warning")
        return redirect(back)
    backup_tasks.enqueue_undo(undo)  # commits the request (and its audit event) first
    backup_views.flash_undo_outcome(undo)
    return redirect(back)


@bp.route("/accounts/<slug>/audit")
@staff_account_view
def audit():
    account = g.support_account
    before = _before_arg(AuditEvent)
    _viewed("audit")
    events = console.audit_log(account, before=before)
    return _render_account(
        "support/audit.html",
        "audit",
        events=events,
        actor_labels=ACTOR_LABELS,
        next_before=events[-1].id if len(events) == console.AUDIT_PAGE_SIZE else None,
    )


# --- for the account's own settings page -------------------------------------------------


@bp.app_context_processor
def _owner_helpers():
    """templates/accounts/settings.html includes support/_account_activity.html, which
    lists what support staff did in the account (support_activity(account))."""
    return {"support_activity": console.staff_activity}
