"""Imports: upload, mapping, dry run, run, history. One engine for the portal, the API,
backup restores and provider switches; `source` decides whether a backup is made first
("ui" only; the backups area connects its snapshot to signals.before_import)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from anyascii import anyascii
from flask import current_app
from flask_babel import lazy_gettext as _l

from portal import clock
from portal.accounts.models import Account
from portal.contacts import fields as contact_fields
from portal.contacts.models import SOURCES, CustomField, FieldType, Group, Source
from portal.core import audit, privacy, signals, sql
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression
from portal.extensions import db
from portal.imports import files, merge, profiles, reader, staging, values
from portal.imports import mapping as m
from portal.imports.lease import Lease, LeaseLost
from portal.imports.models import (
    ACTIVE_STATUSES,
    ImportJob,
    ImportMode,
    ImportRow,
    ImportRowProblem,
    ImportStatus,
)

log = logging.getLogger(__name__)


class ImportRefused(ServiceError):
    """A file or a choice the import cannot take (unreadable, empty, no e-mail column);
    a ServiceError like every other refusal, so a caller that catches those shows it."""


def custom_fields(account_id: int) -> dict[str, CustomField]:
    rows = db.session.scalars(
        db.select(CustomField)
        .where(CustomField.account_id == account_id)
        .order_by(CustomField.position, CustomField.id)
    )
    return {f.key: f for f in rows}


def remembered_mapping(account_id: int) -> dict[str, str]:
    """Header → target of the account's latest mapped import, to suggest it again."""
    recent = db.session.scalars(
        db.select(ImportJob)
        .where(ImportJob.account_id == account_id)
        .order_by(ImportJob.id.desc())
        .limit(20)
    )
    for job in recent:
        if m.EMAIL in (job.mapping or []):
            return {m.normalize_header(h): t for h, t in zip(job.header, job.mapping, strict=False)}
    return {}


def suggest_mapping(
    account_id: int, header: list[str], samples: list[list[str]] | None = None
) -> list[str]:
    """The automatic mapping, with what the account mapped last time for the same
    headers — except for another tool's export or the portal's own files, whose
    columns mean what the tool writes."""
    fields = custom_fields(account_id)
    suggestion = m.auto_map(header, {k: f.label for k, f in fields.items()}, samples or [])
    recognised = profiles.recognise(header, suggestion)
    if recognised.profile is not None:
        return recognised.targets
    remembered = remembered_mapping(account_id)
    allowed = set(m.BUILTIN_TARGETS) | {f"{m.CUSTOM_PREFIX}{k}" for k in fields}
    for i, column in enumerate(header):
        target = remembered.get(m.normalize_header(column))
        if target is not None and target in allowed and target not in suggestion[:i]:
            suggestion[i] = target
    return m.unique_targets(suggestion)


SAMPLE_ROWS = 200  # rows read for the automatic mapping and the date formats


def create_import(
    account,
    *,
    actor,
    group: Group | None,
    source_path: Path,
    filename: str,
    source: Source,
) -> ImportJob:
    """Recognise an uploaded file's format, suggest a mapping and keep the file in the
    file store (files.keep), where the worker that checks and runs the import reads it,
    whichever machine it is on. A file that cannot be read is refused before it is
    stored."""
    try:
        info = reader.inspect(source_path, filename)
        header, samples = reader.preview(source_path, info, rows=SAMPLE_ROWS)
        header = reader.fit_columns(header, samples)
    except reader.FileProblem as problem:
        raise ImportRefused(str(problem.args[0])) from problem
    stored = files.keep(account.id, source_path, filename)
    mapping = suggest_mapping(account.id, header, samples)
    recognised = profiles.recognise(header, mapping)
    job = ImportJob(
        account_id=account.id,
        group_id=group.id if group else None,
        group_name=group.name if group else "",
        created_by_id=getattr(actor, "id", None),
        source=source,
        filename=Path(filename).name[:255],
        stored_path=stored.key,
        file_sha256=stored.checksum,
        file_kind=info.kind,
        encoding=info.encoding,
        delimiter=info.delimiter,
        file_size=stored.size,
        header=header,
        mapping=mapping,
        detected_format=recognised.profile.key if recognised.profile else "",
        value_meanings=recognised.meanings,
        date_formats=recognised.date_formats,
        date_zone=recognised.date_zone,
    )
    db.session.add(job)
    db.session.flush()
    return job


def preview_rows(job: ImportJob, rows: int = 5) -> list[list[str]]:
    info = reader.FileInfo(kind=job.file_kind, encoding=job.encoding, delimiter=job.delimiter)
    with files.upload_copy(job) as path:
        _, body = reader.preview(path, info, rows=rows)
    return body


def configure(
    job: ImportJob,
    *,
    mapping: list[str],
    mode: str,
    import_consent: bool,
    restore_deleted: bool,
    group: Group | None = None,
    date_formats: dict[str, str] | None = None,
    date_zone: str | None = None,
    value_meanings: dict[str, dict[str, str]] | None = None,
    actor=None,
) -> None:
    """Set mapping and options; the staging of an earlier check is thrown away.

    A column mapped to "new:<type>" becomes a new custom field named like the column.
    Date formats not given are read off the file; meanings given for the words of a
    consent column are added to those the tool's profile set."""
    if job.status not in (ImportStatus.UPLOADED, ImportStatus.READY, ImportStatus.FAILED):
        raise ImportRefused(_l("This import has already started."))
    if len(mapping) != len(job.header):
        raise ImportRefused(_l("Choose a target for every column."))
    chosen = [t for t in mapping if t and not t.startswith(m.NEW_FIELD_PREFIX)]
    if chosen.count(m.EMAIL) != 1:
        raise ImportRefused(_l("Choose exactly one column with the email address."))
    if len(chosen) != len(set(chosen)):
        raise ImportRefused(_l("Each field can be chosen for one column only."))
    fields = custom_fields(job.account_id)
    allowed = set(m.BUILTIN_TARGETS) | {f"{m.CUSTOM_PREFIX}{k}" for k in fields}
    if any(t not in allowed for t in chosen):
        raise ImportRefused(_l("Unknown field in the mapping."))
    if date_zone not in (None, "", "UTC"):
        raise ImportRefused(_l("Unknown time zone for the dates."))
    mapping = _new_fields(job, list(mapping), actor=actor)
    job.mapping = mapping
    job.mode = ImportMode(mode).value
    job.import_consent = import_consent
    job.restore_deleted = restore_deleted
    if date_zone is not None:
        job.date_zone = date_zone
    job.date_formats = _date_formats(job, date_formats or {})
    if value_meanings:
        job.value_meanings = _with_meanings(job.value_meanings or {}, value_meanings)
    if group is not None:
        job.group_id, job.group_name = group.id, group.name
    reset_staging(job)
    db.session.flush()


def _new_fields(job: ImportJob, mapping: list[str], *, actor) -> list[str]:
    """Columns mapped to "new:<type>" become custom fields named like the column."""

    account = None
    for i, target in enumerate(mapping):
        if not target.startswith(m.NEW_FIELD_PREFIX):
            continue
        kind = target.removeprefix(m.NEW_FIELD_PREFIX)
        if kind not in (FieldType.TEXT, FieldType.NUMBER, FieldType.DATE):
            raise ImportRefused(_l("Unknown field in the mapping."))
        account = account or db.session.get(Account, job.account_id)
        label = (job.header[i] or "").strip()[:100] or f"{i + 1}"
        key = _free_field_key(job.account_id, label)
        field = contact_fields.create_custom_field(
            account, key, label, kind, actor=actor, source=_source_of(job)
        )
        mapping[i] = f"{m.CUSTOM_PREFIX}{field.key}"
    return mapping


def _source_of(job: ImportJob) -> Source:
    """The import's own source for what it creates; an import started by a restore is
    the portal's job."""
    return Source(job.source) if job.source in SOURCES else Source.JOB


def _free_field_key(account_id: int, label: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", anyascii(label).lower()).strip("_")[:40] or "field"
    if not base[0].isalpha():
        base = f"f_{base}"
    taken = set(custom_fields(account_id))
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    return key


def date_columns(job: ImportJob) -> list[int]:
    """Positions of the columns read as dates: date targets and date custom fields."""
    fields = custom_fields(job.account_id)
    result = []
    for i, target in enumerate(job.mapping or []):
        key = target.removeprefix(m.CUSTOM_PREFIX)
        if target in m.DATE_TARGETS or (
            target.startswith(m.CUSTOM_PREFIX) and key in fields and fields[key].type == "date"
        ):
            result.append(i)
    return result


def _date_formats(job: ImportJob, chosen: dict[str, str]) -> dict[str, str]:
    """The format of every date column: the one chosen, else the profile's, else the
    one that reads the most of the file's first rows."""
    columns = date_columns(job)
    if not columns:
        return {}
    known = dict(job.date_formats or {})
    missing = [i for i in columns if str(i) not in chosen and str(i) not in known]
    samples = preview_rows(job, SAMPLE_ROWS) if missing else []
    result = {}
    for i in columns:
        fmt = chosen.get(str(i), known.get(str(i)))
        if fmt is None:
            fmt = values.detect_date_format([row[i] for row in samples if i < len(row)])
        if fmt not in values.DATE_FORMATS:
            raise ImportRefused(_l("Unknown date format."))
        result[str(i)] = fmt
    return result


def _with_meanings(
    known: dict[str, dict[str, str]], chosen: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    result = {column: dict(words) for column, words in known.items()}
    for column, words in chosen.items():
        for word, meaning in words.items():
            if meaning not in values.MEANINGS:
                raise ImportRefused(_l("Unknown meaning for a value."))
            result.setdefault(str(column), {})[values.word_key(word)] = meaning
    return result


def reset_staging(job: ImportJob) -> None:
    for model in (ImportRow, ImportRowProblem):
        db.session.execute(db.delete(model).where(model.import_id == job.id))
    job.staged_line = job.staged_bytes = job.rows_valid = job.invalid = job.warnings = 0
    job.merged_line = 0
    job.column_stats = {}
    job.consent_counts = {}
    job.staging_done = False
    job.dry_run = {}
    job.error = ""


# --- the states a job passes (the RQ glue in tasks.py only calls these) -----------------

# An import into the same group that has not touched its row for this long is stale (its
# worker is gone; portal.jobs.failures or the lease marks it): it no longer holds the group.
RUNNING_IS_STALE_AFTER = timedelta(minutes=10)


def mark(job: ImportJob, status: ImportStatus) -> None:
    """Checking or queued: set before the job is enqueued (the caller commits first)."""
    job.status = status.value
    job.touched_at = clock.now()


def _group_is_busy(job: ImportJob) -> bool:
    """Another import into the same group is running: this one waits its turn."""
    if job.group_id is None:
        return False
    sql.lock_group(job.group_id)  # serialize the check per group
    stale = clock.now() - RUNNING_IS_STALE_AFTER
    other = db.session.scalar(
        db.select(ImportJob.id).where(
            ImportJob.group_id == job.group_id,
            ImportJob.id != job.id,
            ImportJob.status == ImportStatus.RUNNING.value,
            ImportJob.touched_at > stale,
        )
    )
    return other is not None


def claim_for_run(job: ImportJob) -> bool:
    """Running now (True), or waiting its turn behind another import into the same
    group (False): two imports never merge into one group at once."""
    if _group_is_busy(job):
        job.status = ImportStatus.WAITING.value
        return False
    mark(job, ImportStatus.RUNNING)
    return True


def fail_lost(job: ImportJob, reason: str) -> bool:
    """The worker of the import's job is gone (portal.jobs.failures): failed, so its
    page offers "Continue" at once. Only an import still under way changes."""
    if job.status not in {s.value for s in ACTIVE_STATUSES}:
        return False
    job.status = ImportStatus.FAILED.value
    job.error = reason
    return True


def back_to_mapping(job: ImportJob) -> bool:
    """From the confirmation back to the mapping: what was checked is thrown away, because
    a changed mapping reads every line anew. Only a checked import that has not started
    goes back; anything later keeps its state (False)."""
    if job.status != ImportStatus.READY:
        return False
    reset_staging(job)
    job.status = ImportStatus.UPLOADED.value
    return True


# --- the work itself (called by the RQ tasks, and directly by tests) -------------


def _stage(job: ImportJob, lease: Lease) -> None:
    staging.stage(job, lease, batch_rows=current_app.config["IMPORT_BATCH_ROWS"])


def check(job: ImportJob) -> dict[str, Any]:
    """Dry run: stage the file and classify every row without writing contacts."""
    job.status = ImportStatus.CHECKING.value
    began = clock.now()
    lease = Lease.take(job)
    with _failures_recorded(job, lease):
        if not job.staging_done:
            _stage(job, lease)
        lease.begin(writes=False)
        result = merge.dry_run(job, chunk_rows=current_app.config["IMPORT_CHUNK_ROWS"])
        lease.begin()
        job.dry_run = result
        job.status = ImportStatus.READY.value
        if _file_names_someone_erased_since(job, began):
            # "forget me" ran while the file was checked: lifecycle.traces leaves a file
            # alone while a worker reads it, so the check withdraws it itself
            withdraw_upload(job, ERASED)
        lease.commit()
    return result


def _file_names_someone_erased_since(job: ImportJob, began: datetime) -> bool:
    """Does the file hold an address forgotten in the account since `began`? Read only
    when there is such an erasure (rarely): every cell with an @ is hashed."""

    erased = set(
        db.session.scalars(
            db.select(Suppression.email_hash).where(
                Suppression.account_id == job.account_id, Suppression.created_at >= began
            )
        )
    )
    if not erased or not job.stored_path or not files.store().exists(job.stored_path):
        return False
    hash_of = privacy.hasher()
    info = reader.FileInfo(kind=job.file_kind, encoding=job.encoding, delimiter=job.delimiter)
    with files.upload_copy(job) as path:
        for row in reader.iter_rows(path, info):
            if isinstance(row, reader.RowProblem):
                continue
            for cell in row[1]:
                if "@" not in cell:
                    continue
                try:
                    if hash_of(values.normalize_email(cell)) in erased:
                        return True
                except values.ValueProblem:
                    continue
    return False


def run(job: ImportJob, *, actor=None) -> None:
    """Stage (unless the dry run did), make the backup (portal imports), merge.

    Raises LeaseLost when another worker takes the import over meanwhile: this one
    has then stopped without writing anything after its last committed batch."""
    job.status = ImportStatus.RUNNING.value
    job.started_at = job.started_at or clock.now()
    lease = Lease.take(job)
    with _failures_recorded(job, lease):
        if job.merged_line == 0 and job.source == "ui" and not job.backup_id:
            lease.begin()
            signals.before_import.send(job)
            lease.commit()
        merger = merge.ChunkMerger(job, lease, current_app.config["IMPORT_CHUNK_ROWS"])
        if not job.staging_done:
            _stage_and_merge(job, lease, merger)
        merger.merge_until(job.staged_line, final=True)
        lease.begin()
        job.status = ImportStatus.FINISHED.value
        job.finished_at = clock.now()
        forget_check_examples(job)
        audit.record(
            "import.finished",
            account=_account(job),
            actor=job.created_by,
            object_type="import",
            object_id=job.id,
            details={"group": job.group_name, "source": job.source, **job.counters()},
        )
        lease.commit()


def _stage_and_merge(job: ImportJob, lease: Lease, merger: merge.ChunkMerger) -> None:
    """Without a dry run before, reading and merging overlap: whole chunks are merged
    while the next lines are read. On PostgreSQL the staging has a session (a server
    process) of its own; SQLite has one writer at a time, so there the same session
    merges after a batch."""
    batch_rows = current_app.config["IMPORT_BATCH_ROWS"]
    if sql.strategy().separate_staging_session:
        with staging.Stager(job, lease, batch_rows) as stager:
            for staged_line in stager:
                merger.merge_until(staged_line)
        db.session.expire(job)  # the stager's session wrote the last checkpoints
    else:
        staging.stage(job, lease, after_batch=merger.merge_until, batch_rows=batch_rows)


@contextmanager
def _failures_recorded(job: ImportJob, lease: Lease) -> Iterator[None]:
    """An error marks the import failed (the page then offers to continue) — unless
    another worker has taken it over, whose import it now is."""
    try:
        yield
    except LeaseLost:
        raise
    except reader.EncodingBroken as exc:
        fail(job, lease, f"{ENCODING_BROKEN}:{exc.line}:{exc.encoding}")
        raise
    except Exception as exc:
        fail(job, lease, f"{type(exc).__name__}: {exc}")
        raise


def forget_check_examples(job: ImportJob) -> None:
    """The check step lists people by address (whose consent the import would keep,
    re-activate or leave signed off); once the import has run or was thrown away, the
    list has served and is dropped — it must not outlive the decision it was for."""
    if (job.dry_run or {}).get("consent_examples"):
        job.dry_run = {k: v for k, v in job.dry_run.items() if k != "consent_examples"}


def drop_staging(job: ImportJob) -> None:
    """Housekeeping after a finished import (its own job: the customer is not kept
    waiting for 100,000s of staging rows to be deleted): the staged rows and the
    uploaded file go — the file holds people's data that the portal no longer needs.
    The summary and the failed-rows report live on in the import's own rows."""
    _discard_staging(job)
    db.session.commit()


def _discard_staging(job: ImportJob) -> bool:
    """The staged rows and the uploaded file; True when there was a file to remove."""
    db.session.execute(db.delete(ImportRow).where(ImportRow.import_id == job.id))
    key, job.stored_path = job.stored_path, ""
    return files.remove(key)


FILE_EXPIRED = "file_expired"  # ImportJob.error of an import whose file was swept
DISCARDED = "discarded"  # ImportJob.error of an import its owner discarded before it ran
# ImportJob.error of an import whose file named someone erased ("forget me") after the upload
ERASED = "erased"


def withdraw_upload(job: ImportJob, reason: str) -> bool:
    """An import that has not finished gives up its file: the file and the staged rows
    go, the check step's findings too, and the import is cancelled with `reason` (its
    page says why). Used by the sweep of old uploads and by "forget me" when the file
    names the person (staged before the erasure, it would otherwise keep them and show
    them in the preview). True when a file was removed."""
    removed = _discard_staging(job)
    job.status = ImportStatus.CANCELLED.value
    job.error = reason
    job.dry_run = {}
    return removed


def discard(job: ImportJob, *, actor, ip: str | None = None) -> None:
    """An import that was uploaded or checked but not started, thrown away: its file
    and its staged rows go (they hold people's data), the row stays as "cancelled"."""
    if job.status not in (ImportStatus.UPLOADED, ImportStatus.READY, ImportStatus.FAILED):
        raise ImportRefused(_l("Only an import that has not started can be discarded."))
    db.session.execute(db.delete(ImportRowProblem).where(ImportRowProblem.import_id == job.id))
    _discard_staging(job)
    job.status = ImportStatus.CANCELLED.value
    job.error = DISCARDED
    job.dry_run = {}
    audit.record(
        "import.discarded",
        account=_account(job),
        actor=actor,
        object_type="import",
        object_id=job.id,
        details={"group": job.group_name, "file": job.filename},
        ip=ip,
    )


def sweep_uploads(now: datetime | None = None) -> int:
    """Daily: an uploaded file is kept at most UPLOAD_KEEP_DAYS for an import that never
    finished (mapped but not started, failed and never continued, or abandoned by a
    worker that died: no sign of life for that long); then the file and the staged
    rows go and the import is cancelled, with a message that says why. Files in the
    upload folder that no import refers to (an upload that broke off) go too.
    Returns the number of files removed."""
    now = now or clock.now()
    cutoff = now - timedelta(days=current_app.config["UPLOAD_KEEP_DAYS"])
    active = [s.value for s in ACTIVE_STATUSES]
    stale = db.session.scalars(
        db.select(ImportJob).where(
            ImportJob.stored_path != "",
            ImportJob.created_at < cutoff,
            db.or_(
                ImportJob.status.not_in(active),
                db.func.coalesce(ImportJob.touched_at, ImportJob.created_at) < cutoff,
            ),
        )
    ).all()
    removed = 0
    for job in stale:
        if job.status == ImportStatus.FINISHED:
            removed += _discard_staging(job)
        else:
            removed += withdraw_upload(job, FILE_EXPIRED)
        db.session.commit()
    referenced = set(
        db.session.scalars(db.select(ImportJob.stored_path).where(ImportJob.stored_path != ""))
    )
    return removed + files.sweep_orphans(referenced, cutoff)


ENCODING_BROKEN = "encoding_broken"  # ImportJob.error: "encoding_broken:<line>:<encoding>"


def file_problem(job: ImportJob) -> str | None:
    """What is wrong with the file of a failed import, translated for whoever looks
    (the worker's language is not the reader's); None for other failures."""
    code, _, rest = (job.error or "").partition(":")
    if job.status != ImportStatus.FAILED or code != ENCODING_BROKEN:
        return None
    line, _, encoding = rest.partition(":")
    return str(reader.encoding_broken_message(encoding, int(line or 0)))


def can_resume(job: ImportJob) -> bool:
    """A failed import, or one whose worker died (no sign of life for 10 minutes) —
    not one whose file is broken: it would fail on the same line again."""
    if job.status == ImportStatus.FAILED:
        return file_problem(job) is None
    if job.status in (
        ImportStatus.RUNNING,
        ImportStatus.CHECKING,
        ImportStatus.QUEUED,
        ImportStatus.WAITING,
    ):
        return job.touched_at is None or job.touched_at < clock.now() - timedelta(minutes=10)
    return False


def _account(job: ImportJob):

    return db.session.get(Account, job.account_id)


def fail(job: ImportJob, lease: Lease, message: str) -> None:
    """Record the error, if this worker still holds the import."""
    db.session.rollback()
    try:
        lease.begin()
        job.status = ImportStatus.FAILED.value
        job.error = message[:2000]
        lease.commit()
    except LeaseLost:
        log.warning("import %s failed after it was taken over: %s", job.id, message)
