"""Phase 1 of an import: read the file, validate every row, stage the good rows.

Runs in batches; each batch commits its staged rows, its row problems and the
checkpoint (`staged_line`) together, so a killed worker resumes after the last
committed batch without doubling anything. PostgreSQL gets the rows by COPY,
SQLite by executemany."""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Connection

from portal.accounts.models import Account
from portal.contacts.models import CustomField, Tag
from portal.core import sql
from portal.extensions import db
from portal.imports import files, reader, values
from portal.imports.lease import Lease
from portal.imports.models import ImportJob, ImportRow, ImportRowProblem
from portal.imports.rows import RowParser, add_stats

BATCH_ROWS = 5000
SWITCH_INTERVAL = 0.0005  # seconds, while the parser thread runs (see _in_background)
STAGING_COLUMNS = (
    "import_id", "line", "email", "email_hash", "first_name", "last_name", "search_name",
    "search_name_rev", "fields", "tags", "signup_at", "signoff_at", "active",
    "optout_reason",
)  # fmt: skip


@dataclass
class Batch:
    rows: list[tuple]
    problems: list[dict[str, Any]]  # refused rows (kind "invalid") and warnings
    # PostgreSQL: the rows already in COPY text format, made by the parser thread so
    # that the writing thread only moves bytes
    rows_copy: bytes | None = None
    stats: dict[str, Any] | None = None  # rows.ColumnStats of the batch

    @classmethod
    def empty(cls) -> Batch:
        return cls([], [])

    @property
    def invalid(self) -> int:
        return sum(1 for p in self.problems if p["kind"] == "invalid")

    def pack_for_copy(self) -> None:
        self.rows_copy = _copy_text(self.rows)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _copy_line(row: tuple) -> str:
    """One row in COPY text format. Hot loop: the plain join is checked afterwards and
    only a row whose text needs escaping (a backslash, tab or line break inside a
    value, rare in address lists) takes the value-by-value path."""
    line = "\t".join(
        ["\\N" if v is None else v if v.__class__ is str else _copy_value(v) for v in row]
    )
    if (
        line.count("\\") != row.count(None)
        or line.count("\t") != len(row) - 1
        or "\n" in line
        or "\r" in line
    ):
        line = "\t".join(map(_copy_value, row))
    return line


def _copy_text(rows: list[tuple]) -> bytes:
    """Rows in PostgreSQL's COPY text format."""
    return "".join([_copy_line(row) + "\n" for row in rows]).encode()


# SQLite: rows per INSERT statement; 14 columns make 14,000 parameters, under the
# 32,766 that any SQLite since 3.32 allows
SQLITE_ROWS_PER_STATEMENT = 1_000
_SQLITE_ROW = "(" + ", ".join("?" for _ in STAGING_COLUMNS) + ")"
_SQLITE_INSERT = f"INSERT INTO import_rows ({', '.join(STAGING_COLUMNS)}) VALUES "  # nosec B608  # constants only


def _insert_many_rows_per_statement(connection: Connection, rows: list[tuple]) -> None:
    """SQLite: a thousand rows per INSERT, not one.

    Python's sqlite3 gives up the GIL around every step of a statement, so an
    executemany gave it up once per row, and each time the parser thread held it for up
    to the switch interval: 5.8 s for staging 100,000 rows, against 0.86 s without the
    parser thread beside it (measured). One statement per thousand rows binds its
    parameters in one go and steps once."""
    for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
        part = rows[start : start + SQLITE_ROWS_PER_STATEMENT]
        connection.exec_driver_sql(
            _SQLITE_INSERT + ", ".join([_SQLITE_ROW] * len(part)),
            tuple(chain.from_iterable(part)),
        )


def _write_batch(batch: Batch, dialect: str) -> None:
    connection = db.session.connection()
    if batch.rows:
        if sql.STRATEGIES[dialect].copy_rows:
            raw = connection.connection.driver_connection
            with raw.cursor() as cursor:
                columns = ", ".join(STAGING_COLUMNS)
                with cursor.copy(f"COPY import_rows ({columns}) FROM STDIN") as copy:
                    copy.write(
                        batch.rows_copy if batch.rows_copy is not None else _copy_text(batch.rows)
                    )
        else:
            _insert_many_rows_per_statement(connection, batch.rows)
    if batch.problems:
        db.session.execute(db.insert(ImportRowProblem), batch.problems)


def _problem(job_id: int, line: int, code: str, params: dict, cells: Iterable[str]) -> dict:
    return {
        "import_id": job_id,
        "line": line,
        "kind": "invalid",
        "code": code,
        "params": {k: str(v) for k, v in params.items()},
        "cells": [c[:500] for c in list(cells)[:50]],
    }


@dataclass
class ParsedBatch:
    batch: Batch
    last_line: int
    fraction: float


@dataclass(frozen=True)
class Source:
    """What the parser thread needs of the job, as plain values (ORM objects belong to
    the thread whose session loaded them)."""

    job_id: int
    path: Path
    info: reader.FileInfo
    resume_after: int

    @classmethod
    def of(cls, job: ImportJob, path: Path) -> Source:
        """`path`: the job's list on this machine (files.upload_copy)."""
        info = reader.FileInfo(kind=job.file_kind, encoding=job.encoding, delimiter=job.delimiter)
        return cls(job.id, path, info, job.staged_line)


def parse_batches(
    source: Source, parser: RowParser, batch_rows: int, for_copy: bool = False
) -> Iterator[ParsedBatch]:
    """The file as batches of staging rows and row problems, after the last staged line."""
    job_id = source.job_id
    progress = reader.Progress()
    batch = Batch.empty()
    header_seen = False
    resume_after = last_line = source.resume_after
    for item in reader.iter_rows(source.path, source.info, progress):
        if isinstance(item, reader.RowProblem):
            if item.line > resume_after:
                batch.problems.append(_problem(job_id, item.line, "line_broken", {}, []))
                last_line = item.line
            continue
        line, cells = item
        if not header_seen:
            header_seen = True
            continue
        if line <= resume_after:
            continue
        last_line = line
        try:
            row = parser.parse(line, cells, batch.problems)
        except values.ValueProblem as problem:
            batch.problems.append(_problem(job_id, line, problem.code, problem.params, cells))
        else:
            batch.rows.append(row)
        if len(batch.rows) + len(batch.problems) >= batch_rows:
            if for_copy:
                batch.pack_for_copy()
            batch.stats = parser.stats.take()
            yield ParsedBatch(batch, last_line, progress.fraction)
            batch = Batch.empty()
    if for_copy:
        batch.pack_for_copy()
    batch.stats = parser.stats.take()
    yield ParsedBatch(batch, last_line, 1.0)


def _in_background(batches: Iterator[ParsedBatch], depth: int = 8) -> Iterator[ParsedBatch]:
    """Parse in a thread while this one writes: Python parses on one core while the
    database stores the previous batch on the other. The queue is bounded, so memory
    stays flat; an error in the parser is raised here."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        channel.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            channel.put(done)
        except BaseException as exc:  # handed to the consumer  # noqa: BLE001
            channel.put(exc)

    thread = threading.Thread(target=produce, name="import-parser", daemon=True)
    # The writing thread waits for the database most of the time; when an answer
    # arrives it needs the GIL back from the parser at once, not after the default
    # 5 ms (which cost 1-2 s of an import of 100,000 rows).
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    thread.start()
    try:
        while (item := channel.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        sys.setswitchinterval(switch_interval)


def stage(
    job: ImportJob,
    lease: Lease,
    *,
    after_batch: Callable[[int], None] | None = None,
    batch_rows: int = BATCH_ROWS,
    stop: threading.Event | None = None,
) -> None:
    """Read the whole file into staging, resuming after job.staged_line. Each batch
    commits its rows, its problems and the checkpoint together, under the worker's
    lease; `after_batch(staged_line)` may then merge what is staged while the parser
    thread reads on. `stop` ends the staging at the next batch (the file is staged up
    to the checkpoint, as after a killed worker)."""

    account = db.session.get(Account, job.account_id)
    dialect = sql.dialect_name()
    fields = {
        f.key: f
        for f in db.session.scalars(
            db.select(CustomField).where(CustomField.account_id == job.account_id)
        )
    }
    parser = RowParser(
        job,
        fields,
        ZoneInfo(account.timezone),
        partial(sql.utc_param, dialect=dialect),
        known_tags(job),
    )
    # the list from the file store, as a file on this machine for as long as it is read
    with files.upload_copy(job) as path:
        source = Source.of(job, path)
        batches = _in_background(
            parse_batches(source, parser, batch_rows, for_copy=sql.STRATEGIES[dialect].copy_rows)
        )
        try:
            _write_batches(job, lease, batches, dialect, after_batch, stop)
        finally:
            batches.close()  # the parser thread stops before its file goes


def _write_batches(
    job: ImportJob,
    lease: Lease,
    batches: Iterator[ParsedBatch],
    dialect: str,
    after_batch: Callable[[int], None] | None,
    stop: threading.Event | None,
) -> None:
    """Commit each parsed batch with its checkpoint (see stage)."""
    for parsed in batches:
        if stop is not None and stop.is_set():
            return
        lease.begin()
        _write_batch(parsed.batch, dialect)
        job.staged_line = parsed.last_line
        job.staged_bytes = int(parsed.fraction * job.file_size)  # for the progress bar
        job.rows_valid += len(parsed.batch.rows)
        invalid = parsed.batch.invalid
        job.invalid += invalid
        job.warnings += len(parsed.batch.problems) - invalid
        if parsed.batch.stats:
            job.column_stats = add_stats(job.column_stats, parsed.batch.stats)
        lease.commit()
        if after_batch:
            after_batch(parsed.last_line)
    lease.begin()
    job.staging_done = True
    lease.commit()


def known_tags(job: ImportJob) -> list[str]:
    """The spellings tags already have: the account's, and on a resume those that the
    import staged before it stopped (they are not tags yet, but their rows will make
    them so with that spelling)."""
    names = list(db.session.scalars(db.select(Tag.name).where(Tag.account_id == job.account_id)))
    if job.staged_line:
        staged = db.session.scalars(
            db.select(ImportRow.tags)
            .where(ImportRow.import_id == job.id, ImportRow.tags.is_not(None))
            .distinct()
        )
        for cell in staged:
            names.extend(json.loads(cell))
    return names


class Stager:
    """Staging in a thread of its own with its own database session, while the caller
    merges on its session: on PostgreSQL the two sessions are two server processes,
    so the COPY of the next lines runs beside the merge of the previous chunk instead
    of after it. Iterating yields the checkpoint of every committed batch.

        with Stager(job, lease, batch_rows) as stager:
            for staged_line in stager:
                merger.merge_until(staged_line)

    Both sessions write under the same lease, and their checkpoints are separate
    columns of the import's row (staged_line, merged_line), so a killed worker resumes
    exactly as with one session. An error or a lost lease in the staging thread is
    raised in the caller's; leaving the block early stops the staging thread at its
    next batch and waits for it."""

    _DONE = object()

    def __init__(self, job: ImportJob, lease: Lease, batch_rows: int = BATCH_ROWS) -> None:
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.job_id = job.id
        self.lease = lease
        self.batch_rows = batch_rows
        self.channel: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="import-stager", daemon=True)

    def _work(self) -> None:
        with self.app.app_context():
            try:
                job = db.session.get(ImportJob, self.job_id)
                stage(
                    job,
                    self.lease,
                    after_batch=self.channel.put,
                    batch_rows=self.batch_rows,
                    stop=self.stop,
                )
                self.channel.put(self._DONE)
            except BaseException as exc:  # handed to the caller's thread  # noqa: BLE001
                db.session.rollback()
                self.channel.put(exc)
            finally:
                db.session.remove()

    def __enter__(self) -> Stager:
        self.thread.start()
        return self

    def __iter__(self) -> Iterator[int]:
        while (item := self.channel.get()) is not self._DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            # our transaction may hold the import's row, which the stager's next
            # checkpoint waits for
            db.session.rollback()
        self.stop.set()
        self.thread.join()
