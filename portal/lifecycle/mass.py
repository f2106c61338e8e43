"""Mass management: delete, restore or forget many contacts at once — all contacts
matching a filter, a selection from the list, or a pasted or uploaded list of addresses.

The user first sees what will happen (a draft LifecycleJob with the count and every
unusable line of a list, by line number), confirms, and a worker does the work in
batches of BATCH contacts. Each batch commits its changes together with the counters
and the checkpoint, so the progress page reads the row, and a killed worker resumes
where it stopped without doing anything twice (deleting or restoring twice changes
nothing; an address forgotten twice is erased once)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import clock
from portal.accounts.models import Account
from portal.contacts import queries
from portal.contacts.models import Contact, Source
from portal.contacts.queries import ContactFilter
from portal.core import audit
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.imports import reader
from portal.lifecycle import service
from portal.lifecycle.models import LifecycleAction, LifecycleJob, LifecycleStatus
from portal.tenancy import owned

if TYPE_CHECKING:
    from portal.accounts.models import User

BATCH = 1000
MAX_LIST_ENTRIES = 1_000_000
MAX_REPORTED_LINES = 200  # unusable lines listed on the confirmation page
STALE_AFTER = timedelta(minutes=10)  # a running job without a sign of life may be continued
DRAFT_HOURS = 24  # unconfirmed drafts are swept after this long

_SPLIT = re.compile(r"[,;\t|]")


class MassActionRefused(ServiceError):
    pass


# --- lists of addresses --------------------------------------------------------------


# Why a line of a list could not be used. The job keeps the code, the page says it in the
# reader's language (a job that a Dutch colleague ran reads German to a German owner).
LIST_PROBLEMS = {
    "line_broken": _l("The line is too long or badly quoted."),
    "no_address": _l("No email address in this line."),
    "invalid_address": _l("This is not a valid email address."),
}


def list_problem_text(problem: dict[str, Any]) -> str:
    """A reported line's reason in the reader's language (older jobs kept the text)."""
    if problem.get("code") in LIST_PROBLEMS:
        return str(LIST_PROBLEMS[problem["code"]])
    return str(problem.get("message", ""))


@dataclass
class EmailList:
    """The usable addresses of a list (normalized, each once, in order) and every line
    that could not be used, with its number and why."""

    emails: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # {line, text, code}
    problem_count: int = 0
    duplicates: int = 0

    def _problem(self, line: int, text: str, code: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED_LINES:
            self.problems.append({"line": line, "text": text[:200], "code": code})


def parse_email_rows(rows: Iterable[tuple[int, list[str]] | reader.RowProblem]) -> EmailList:
    """Every cell holding an @ is taken as an address; a first line without one is a
    header. Invalid addresses and lines without any are reported by line number."""
    result = EmailList()
    seen: set[str] = set()
    first = True
    for row in rows:
        if isinstance(row, reader.RowProblem):
            result._problem(row.line, "", "line_broken")
            first = False
            continue
        line, cells = row
        candidates = [c.strip() for cell in cells for c in _SPLIT.split(cell) if "@" in c]
        if not candidates:
            if not first:
                result._problem(line, " ".join(cells).strip(), "no_address")
            first = False
            continue
        first = False
        for text in candidates:
            try:
                email = normalize_email(text)
            except ServiceError:
                result._problem(line, text, "invalid_address")
                continue
            if email in seen:
                result.duplicates += 1
                continue
            seen.add(email)
            result.emails.append(email)
            if len(result.emails) > MAX_LIST_ENTRIES:
                raise MassActionRefused(
                    _l("A list may hold at most %(num)s addresses.", num=f"{MAX_LIST_ENTRIES:,}")
                )
    return result


def parse_pasted(text: str) -> EmailList:
    rows = ((number, [line]) for number, line in enumerate(text.splitlines(), start=1))
    return parse_email_rows(row for row in rows if row[1][0].strip())


def parse_upload(path: Path, filename: str) -> EmailList:
    """A CSV/TXT/XLSX file, read like an import (any encoding, streamed)."""
    try:
        info = reader.inspect(path, filename)
        return parse_email_rows(reader.iter_rows(path, info))
    except reader.FileProblem as exc:
        raise MassActionRefused(exc.args[0]) from exc


# --- drafts, confirmation, progress -----------------------------------------------------


def _draft(
    account: Account,
    action: LifecycleAction,
    selection: dict[str, Any],
    *,
    total: int,
    actor: User | None,
    source: str,
    ip: str | None,
    result: dict[str, Any] | None = None,
) -> LifecycleJob:
    job = LifecycleJob(
        account_id=account.id,
        created_by_id=getattr(actor, "id", None),
        action=LifecycleAction(action).value,
        source=source,
        selection=selection,
        ip=ip,
        status=LifecycleStatus.DRAFT.value,
        total=total,
        result=result or {},
    )
    db.session.add(job)
    db.session.flush()
    return job


def draft_for_filter(
    account: Account,
    action: LifecycleAction,
    f: ContactFilter,
    *,
    tz: ZoneInfo,
    actor: User | None,
    source: Source,
    ip: str | None = None,
) -> LifecycleJob:
    total, _capped = queries.count_contacts(account, f, cap=10**9, tz=tz)
    selection = {"scope": "filter", "filter": f.query_string(), "tz": tz.key}
    return _draft(account, action, selection, total=total, actor=actor, source=source, ip=ip)


def draft_for_emails(
    account: Account,
    action: LifecycleAction,
    emails: EmailList,
    *,
    actor: User | None,
    source: Source,
    ip: str | None = None,
) -> LifecycleJob:
    found = len(service.ids_for_emails(account, emails.emails))
    result = {
        "found": found,
        "problems": emails.problems,
        "problem_count": emails.problem_count,
        "duplicates": emails.duplicates,
    }
    selection = {"scope": "emails", "emails": emails.emails}
    return _draft(
        account,
        action,
        selection,
        total=len(emails.emails),
        actor=actor,
        source=source,
        ip=ip,
        result=result,
    )


def draft_for_ids(
    account: Account,
    action: LifecycleAction,
    ids: Iterable[int],
    *,
    actor: User | None,
    source: Source,
    ip: str | None = None,
) -> LifecycleJob:
    owned = sorted(
        {i for batch in queries.BulkSelection(ids=tuple(ids)).iter_ids(account) for i in batch},
        reverse=True,
    )
    selection = {"scope": "ids", "ids": owned}
    return _draft(account, action, selection, total=len(owned), actor=actor, source=source, ip=ip)


def confirm(job: LifecycleJob) -> None:
    """The user said yes: the draft is queued (the caller commits, then enqueues)."""
    if job.status != LifecycleStatus.DRAFT.value:
        raise MassActionRefused(_l("This action has already been started."))
    job.status = LifecycleStatus.QUEUED.value
    job.touched_at = clock.now()


def cancel_draft(job: LifecycleJob, *, actor: User | None, ip: str | None = None) -> bool:
    """The user said no on the confirmation page: the draft goes, nothing else changes.
    The audit log still shows that a mass action was prepared and dropped, and by whom,
    because support is asked "who tried to delete these?" as often as "who did"."""
    if job.status != LifecycleStatus.DRAFT.value:
        return False
    audit.record(
        "lifecycle.draft_cancelled",
        account=job.account,
        actor=actor,
        object_type="lifecycle_job",
        object_id=job.id,
        details={"action": job.action, "count": job.total, "source": job.source},
        ip=ip,
    )
    db.session.delete(job)
    return True


def queue_again_if_failed(job: LifecycleJob) -> None:
    """ "Continue" after a failure: queued again, to go on from its checkpoint."""
    job.touched_at = clock.now()
    if job.status == LifecycleStatus.FAILED.value:
        job.status = LifecycleStatus.QUEUED.value


def fail_lost(job: LifecycleJob, reason: str) -> bool:
    """The worker of the mass action is gone (portal.jobs.failures): failed at once, so
    the page offers "Continue". Only an action still under way changes."""
    if not job.is_active:
        return False
    job.status = LifecycleStatus.FAILED.value
    job.error = reason
    job.touched_at = clock.now()
    return True


def percent(job: LifecycleJob) -> int:
    if job.status == LifecycleStatus.FINISHED.value:
        return 100
    if not job.total:
        return 0
    return min(99, int(100 * job.processed / job.total))


def progress(job: LifecycleJob) -> dict[str, Any]:
    return {
        "status": job.status,
        "percent": percent(job),
        "total": job.total,
        "processed": job.processed,
        "changed": job.changed,
        "not_found": job.not_found,
    }


def can_resume(job: LifecycleJob, now=None) -> bool:
    """A failed job, or one that stopped showing signs of life (its worker was killed)."""
    if job.status == LifecycleStatus.FAILED.value:
        return True
    if job.status in (LifecycleStatus.RUNNING.value, LifecycleStatus.QUEUED.value):
        seen = job.touched_at or job.created_at
        return seen < (now or clock.now()) - STALE_AFTER
    return False


def get_job(account: Account, job_id: int) -> LifecycleJob | None:
    return owned(LifecycleJob, job_id, account)


def recent_jobs(account: Account, limit: int = 10) -> list[LifecycleJob]:
    return list(
        db.session.scalars(
            select(LifecycleJob)
            .where(
                LifecycleJob.account_id == account.id,
                LifecycleJob.status != LifecycleStatus.DRAFT.value,
            )
            .order_by(LifecycleJob.id.desc())
            .limit(limit)
        )
    )


# --- the work ---------------------------------------------------------------------------


def _filter_batches(job: LifecycleJob, account: Account) -> Iterator[list[int]]:
    """The filter run again, newest first, from the checkpoint on (keyset, so contacts
    that stop matching because of this very job do not shift the pages)."""
    selection = job.selection
    f = ContactFilter.from_args(dict(parse_qsl(selection.get("filter") or "")))
    conds = queries.filter_conditions(account, f, ZoneInfo(selection.get("tz") or "UTC"))
    while True:
        query = select(Contact.id).where(*conds)
        if job.checkpoint is not None:
            query = query.where(Contact.id < job.checkpoint)
        ids = list(db.session.scalars(query.order_by(Contact.id.desc()).limit(BATCH)))
        if not ids:
            return
        yield ids


def _id_batches(job: LifecycleJob) -> Iterator[list[int]]:
    ids = job.selection.get("ids") or []
    if job.checkpoint is not None:
        ids = [i for i in ids if i < job.checkpoint]
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _apply_to_ids(job: LifecycleJob, account: Account, ids: list[int]) -> int:
    action = LifecycleAction(job.action)
    kwargs = {"actor": job.created_by, "source": job.source, "ip": job.ip, "record": False}
    if action == LifecycleAction.DELETE:
        return service.delete_contacts(account, ids, **kwargs)
    if action == LifecycleAction.RESTORE:
        return service.undelete_contacts(account, ids, **kwargs)
    emails = list(
        db.session.scalars(
            select(Contact.email).where(Contact.account_id == account.id, Contact.id.in_(ids))
        )
    )
    receipt = service.forget_emails(account, emails, **kwargs)
    _add_receipt(job, receipt)
    return receipt.contacts


def _apply_to_emails(job: LifecycleJob, account: Account, emails: list[str]) -> tuple[int, int]:
    """(changed, not found) for one batch of addresses."""
    action = LifecycleAction(job.action)
    kwargs = {"actor": job.created_by, "source": job.source, "ip": job.ip, "record": False}
    if action == LifecycleAction.FORGET:
        receipt = service.forget_emails(account, emails, **kwargs)
        _add_receipt(job, receipt)
        return receipt.contacts, len(emails) - receipt.contacts
    found = service.ids_for_emails(account, emails)
    apply = (
        service.delete_contacts if action == LifecycleAction.DELETE else service.undelete_contacts
    )
    return apply(account, list(found.values()), **kwargs), len(emails) - len(found)


def _add_receipt(job: LifecycleJob, receipt: service.ErasureReceipt) -> None:
    total = service.ErasureReceipt(**(job.result or {}).get("receipt", {}))
    total.add(receipt)
    job.result = {**(job.result or {}), "receipt": total.as_dict()}


def _checkpointed(job: LifecycleJob, processed: int, changed: int, checkpoint: int) -> None:
    job.processed += processed
    job.changed += changed
    job.checkpoint = checkpoint
    job.touched_at = clock.now()
    db.session.commit()


def run(job: LifecycleJob) -> None:
    """Do the confirmed work batch by batch; resumes from the row's checkpoint."""
    if job.status in (LifecycleStatus.DRAFT.value, LifecycleStatus.FINISHED.value):
        return
    account = job.account
    job.status = LifecycleStatus.RUNNING.value
    job.started_at = job.started_at or clock.now()
    job.touched_at = clock.now()
    db.session.commit()
    scope = job.selection.get("scope")
    if scope == "emails":
        emails = job.selection.get("emails") or []
        start = job.checkpoint or 0
        for offset in range(start, len(emails), BATCH):
            chunk = emails[offset : offset + BATCH]
            # an empty place: an address erased ("forget me") while the job waited
            live = [e for e in chunk if e]
            changed, missing = _apply_to_emails(job, account, live) if live else (0, 0)
            job.not_found += missing
            _checkpointed(job, len(chunk), changed, offset + len(chunk))
    else:
        batches = _filter_batches(job, account) if scope == "filter" else _id_batches(job)
        for ids in batches:
            changed = _apply_to_ids(job, account, ids)
            _checkpointed(job, len(ids), changed, min(ids))
    _finish(job, account)


def _finish(job: LifecycleJob, account: Account) -> None:
    job.status = LifecycleStatus.FINISHED.value
    job.finished_at = clock.now()
    job.touched_at = job.finished_at
    if job.selection.get("scope") == "emails":
        # the list may name people who asked to be forgotten: only the count stays
        job.selection = {"scope": "emails", "emails": [], "count": job.total}
    if job.action == LifecycleAction.FORGET.value:
        receipt = service.ErasureReceipt(**(job.result or {}).get("receipt", {}))
        receipt.addresses = job.processed
        service.record_erasure(account, receipt, actor=job.created_by, source=job.source, ip=job.ip)
    else:
        audit.record(
            f"contacts.{'deleted' if job.action == 'delete' else 'restored'}",
            account=account,
            actor=job.created_by,
            object_type="lifecycle_job",
            object_id=job.id,
            details={"count": job.changed, "source": job.source, "mass": True},
            ip=job.ip,
        )
    db.session.commit()


def fail(job: LifecycleJob, message: str) -> None:
    db.session.rollback()
    job = db.session.get(LifecycleJob, job.id)
    job.status = LifecycleStatus.FAILED.value
    job.error = message[:2000]
    job.touched_at = clock.now()
    db.session.commit()


def sweep_drafts(now=None) -> int:
    """Drafts nobody confirmed (they may hold a pasted list) are removed after a day."""
    cutoff = (now or clock.now()) - timedelta(hours=DRAFT_HOURS)
    result = db.session.execute(
        LifecycleJob.__table__.delete().where(
            LifecycleJob.status == LifecycleStatus.DRAFT.value, LifecycleJob.created_at < cutoff
        )
    )
    db.session.commit()
    return result.rowcount or 0
