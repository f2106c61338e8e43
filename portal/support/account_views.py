"""The account's side of the support console: what support staff did in it, all of it
(issue 16, point 6). The settings page shows the newest 30; a look-up of a contact was
pushed out of sight by 31 page views. Here the whole log, paged, filtered by staff
member and by action, and as a CSV download (formula-safe, editors like every other
download of personal data; every answer is Cache-Control: no-store)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Response, g, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import excel_csv, i18n
from portal.accounts.models import Role
from portal.core.audit import AuditEvent
from portal.safe_csv import safe_row
from portal.support import console
from portal.support.describe import describe_event
from portal.tenancy import can, id_or_none, require_role, tenant_blueprint

bp = tenant_blueprint("support_log", __name__)

# the actions support staff leave in an account, for the filter (others show their code)
ACTION_LABELS = {
    "support.access_opened": _l("Access opened"),
    "support.access_closed": _l("Access closed"),
    "support.viewed": _l("Page looked at"),
    "support.contact_looked_up": _l("Contact looked up"),
    "support.import_undo_requested": _l("Import undo requested"),
    "contacts.restored": _l("Contacts restored"),
    "backup.restored": _l("Backup restored"),
    "integration.reset": _l("Provider link reset"),
}


def _filters() -> dict[str, str | None]:
    """The filters of the query string, as the log knows them (anything else: none)."""
    members, actions = console.staff_log_choices(g.account)
    staff = request.args.get("staff") or None
    action = request.args.get("action") or None
    return {
        "staff": staff if staff in members else None,
        "action": action if action in actions else None,
    }


@bp.route("/settings/support")
def staff_log():
    filters = _filters()
    before = id_or_none(AuditEvent, request.args.get("before"))
    events = console.staff_log(g.account, before=before, **filters)
    members, actions = console.staff_log_choices(g.account)
    full = len(events) == console.STAFF_LOG_PAGE_SIZE
    return render_template(
        "support/staff_log.html",
        events=events,
        members=members,
        actions=[(a, str(ACTION_LABELS.get(a, a))) for a in actions],
        filters=filters,
        next_before=events[-1].id if full else None,
        first_page=before is None,
        can_download=can(Role.EDITOR),
    )


@bp.route("/settings/support.csv")
@require_role(Role.EDITOR)  # like backups, exports and failed rows: a download of the log
def download_staff_log():
    filters = _filters()
    name = f"{g.account.slug}-support-access.csv"
    return Response(
        stream_with_context(_csv_lines(console.iter_staff_log(g.account, **filters))),
        content_type=excel_csv.CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_lines(events: Iterator[AuditEvent]) -> Iterator[str]:
    """Time (UTC, ISO 8601), staff member, action, what happened in the reader's
    language; every cell formula-guarded (a staff reason is free text)."""
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=excel_csv.delimiter_for(i18n.current_language()), lineterminator="\r\n"
    )
    out.write("\ufeff")
    writer.writerow(safe_row([_("Time (UTC)"), _("Support staff"), _("Action"), _("What")]))
    for n, event in enumerate(events, start=1):
        writer.writerow(
            safe_row(
                [
                    event.created_at.isoformat(timespec="seconds"),
                    event.actor_label,
                    event.action,
                    describe_event(event),
                ]
            )
        )
        if n % 200 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
