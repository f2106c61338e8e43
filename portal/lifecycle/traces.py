""" "Forget me" outside the contact's own rows: what other parts of the portal still hold
of the person — files, lists waiting for a decision, mails — is removed or redacted in
the erasure's own transaction (issue 16, point 3).

- **Uploads staged before the erasure**: an import that was uploaded, checked or failed
  but not finished keeps its file for up to UPLOAD_KEEP_DAYS, and its mapping page shows
  the first rows. When the file names the person, the import is cancelled and the file
  and staged rows go (its page says why; uploading the list again skips the person).
  Rewriting the file instead would move the line numbers and the byte checkpoints a
  resumed import relies on.
- **The check step's examples**: the addresses it lists by consent effect lose the
  forgotten ones (imports drop the whole list once they ran or were discarded).
- **Mass-management lists**: drafts and queued or failed jobs lose the addresses (a
  queued or failed job keeps the positions, as its checkpoint counts entries) and every
  unusable line that holds one. A running job is left alone: its own list is what it is
  working through, and it is wiped when the job ends.
- **Exports** (the integrations area connects withdraw_exports to
  signals.before_erasure) and **the outbox folder** (portal.mail.redact_outbox).

What stays: backup files made before the erasure, filtered on every read until they
expire (docs/decisions/lifecycle.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from portal.contacts.models import Contact
from portal.core import signals
from portal.core.storage import FileDamaged
from portal.extensions import db
from portal.imports import files as upload_files
from portal.imports import reader
from portal.imports import service as imports
from portal.imports.models import ImportJob, ImportRow, ImportStatus
from portal.lifecycle.models import LifecycleJob, LifecycleStatus
from portal.mail import redact_outbox

if TYPE_CHECKING:
    from portal.accounts.models import Account

log = logging.getLogger(__name__)

# imports that have a file and no worker reading it
_WAITING_IMPORTS = (
    ImportStatus.UPLOADED.value,
    ImportStatus.READY.value,
    ImportStatus.FAILED.value,
)
# mass actions whose list waits (a running one is reading its own list)
_WAITING_JOBS = (
    LifecycleStatus.DRAFT.value,
    LifecycleStatus.QUEUED.value,
    LifecycleStatus.FAILED.value,
)


def redact(
    account: Account, emails: set[str], addresses_in: Callable[[Iterable], set[str]]
) -> tuple[int, int]:
    """Remove or redact the forgotten `emails` (normalized) wherever they wait outside
    the contact's rows; `addresses_in` finds address-like tokens in texts the way the
    failed-rows erasure does. Call it before the contacts are erased (a draft's count of
    contacts found is corrected). Returns (files removed, lists redacted)."""
    files = lists = 0
    uploads, examples = _imports(account, emails, addresses_in)
    files += uploads
    lists += examples + _mass_lists(account, emails, addresses_in)
    # other areas remove what they keep of the people (signals.before_erasure)
    files += sum(removed for _, removed in signals.before_erasure.send(account.id, emails=emails))
    files += redact_outbox(account.id, emails)
    return files, lists


def _imports(
    account: Account, emails: set[str], addresses_in: Callable[[Iterable], set[str]]
) -> tuple[int, int]:
    files = lists = 0
    waiting = db.session.scalars(
        select(ImportJob).where(
            ImportJob.account_id == account.id,
            ImportJob.status.in_(_WAITING_IMPORTS),
            ImportJob.stored_path != "",
        )
    ).all()
    for job in waiting:
        if _names(job, emails, addresses_in):
            files += imports.withdraw_upload(job, imports.ERASED)
            lists += 1
    # every import of the account: one that ran before its examples were dropped at the
    # end (issue 16) may still have them
    for job in db.session.scalars(select(ImportJob).where(ImportJob.account_id == account.id)):
        examples = (job.dry_run or {}).get("consent_examples") or {}
        kept = {k: [e for e in v if e not in emails] for k, v in examples.items()}
        if kept != examples:
            job.dry_run = {**job.dry_run, "consent_examples": {k: v for k, v in kept.items() if v}}
            lists += 1
    return files, lists


def _names(job: ImportJob, emails: set[str], addresses_in: Callable[[Iterable], set[str]]) -> bool:
    """Does the import's file (or what was staged of it) hold one of the addresses?"""
    staged = db.session.scalar(
        select(ImportRow.line)
        .where(ImportRow.import_id == job.id, ImportRow.email.in_(sorted(emails)))
        .limit(1)
    )
    if staged is not None:
        return True
    if not upload_files.store().exists(job.stored_path):
        return False
    info = reader.FileInfo(kind=job.file_kind, encoding=job.encoding, delimiter=job.delimiter)
    try:
        with upload_files.upload_copy(job) as path:
            for row in reader.iter_rows(path, info):
                if not isinstance(row, reader.RowProblem) and addresses_in(row[1]) & emails:
                    return True
    except (reader.FileProblem, FileDamaged):
        # a file that cannot be read to its end (or was changed since the upload) cannot
        # be shown either; it may still name the person in the part that was not read:
        # it goes
        log.warning("import %s: file unreadable while checking it for an erasure", job.id)
        return True
    return False


def _contacts_among(account: Account, emails: list[str]) -> int:
    count = 0
    for start in range(0, len(emails), 1000):
        count += db.session.scalar(
            select(func.count(Contact.id)).where(
                Contact.account_id == account.id, Contact.email.in_(emails[start : start + 1000])
            )
        )
    return count


def _mass_lists(
    account: Account, emails: set[str], addresses_in: Callable[[Iterable], set[str]]
) -> int:
    redacted = 0
    jobs = db.session.scalars(
        select(LifecycleJob).where(
            LifecycleJob.account_id == account.id, LifecycleJob.status.in_(_WAITING_JOBS)
        )
    ).all()
    for job in jobs:
        selection, result = job.selection or {}, job.result or {}
        listed = selection.get("emails") or []
        problems = result.get("problems") or []
        named = [e for e in listed if e in emails]
        bad_lines = [p for p in problems if addresses_in([p.get("text", "")]) & emails]
        if not named and not bad_lines:
            continue
        if named:
            if job.status == LifecycleStatus.DRAFT.value:
                # nothing started: the address simply leaves the list and the counts
                # (called before the contacts are erased, so they can still be counted)
                listed = [e for e in listed if e not in emails]
                job.total = len(listed)
                found = result.get("found", 0) - _contacts_among(account, named)
                job.result = {**result, "found": max(0, found)}
            else:
                # the checkpoint counts entries: the places stay, empty
                listed = ["" if e in emails else e for e in listed]
            job.selection = {**selection, "emails": listed}
        if bad_lines:
            job.result = {
                **(job.result or {}),
                "problems": [p for p in problems if p not in bad_lines],
                "problem_count": max(0, result.get("problem_count", 0) - len(bad_lines)),
            }
        redacted += 1
    return redacted
