"""`flask portal move-files --to <store>`: every file of every area (backups, uploads,
exports, the outbox) from one store into another, verified and resumable.

Each file is copied, the copy is read back and its size and sha256 compared with what
the file's row keeps (or, where no row keeps a checksum — the outbox, uploads from
before checksums —, with the source's own bytes, measured before the copy); only then
is the source deleted. So a file is never lost: a run that is killed leaves the source
in place (and at most an unfinished copy, which the next run writes again), and a
second run continues — a verified copy is not written again, only its source removed.
A file whose bytes do not match its row, or that is in neither store, is reported and
left where it is."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from portal.core.storage import AREAS, BackupStorage, StorageError, measure
from portal.extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expected:
    """A file a row points to: its key and, when the row keeps them, size and sha256."""

    key: str
    size: int | None = None
    sha256: str = ""


@dataclass
class MoveCounts:
    moved: int = 0
    already_there: int = 0  # verified in the target (a run before was interrupted)
    missing: int = 0  # in neither store
    damaged: int = 0  # the source's bytes do not match the row: left where they are
    without_row: int = 0  # files in the source no row points to (swept by retention)


# area → the files its rows point to, read from the database in batches; given the
# source store (the outbox has no rows: every mail in the store is one). Each area
# registers its own (backups.retention, imports.files, integrations.export, mail).
KNOWN_FILES: dict[str, Callable[[BackupStorage], Iterable[Expected]]] = {}


def register(area: str, known: Callable[[BackupStorage], Iterable[Expected]]) -> None:
    KNOWN_FILES[area] = known


def move_area(area: str, source: BackupStorage, target: BackupStorage) -> MoveCounts:
    """Move every file of one area that a row points to from `source` to `target`."""
    counts = MoveCounts()
    keys: set[str] = set()
    for item in KNOWN_FILES[area](source):
        keys.add(item.key)
        _move_one(item, source, target, counts, area)
    counts.without_row = sum(1 for e in source.entries() if e.key not in keys)
    return counts


def move_all(stores: Callable[[str], tuple[BackupStorage, BackupStorage]]) -> dict[str, MoveCounts]:
    """Every area in turn; `stores(area)` gives that area's (source, target)."""
    return {area: move_area(area, *stores(area)) for area in AREAS if area in KNOWN_FILES}


def _move_one(
    item: Expected, source: BackupStorage, target: BackupStorage, counts: MoveCounts, area: str
) -> None:
    key = item.key
    in_source = source.exists(key)
    if target.exists(key):
        if not in_source:
            if not item.sha256 or _measured(target, key) == (item.size, item.sha256):
                counts.already_there += 1  # moved and verified by a run before
            else:  # the only copy, damaged: reported, never deleted
                log.error("%s: file %s does not match its checksum", area, key)
                counts.damaged += 1
            return
        if _measured(target, key) == _wanted(item, source):
            source.delete(key)
            counts.already_there += 1
            return
        target.delete(key)  # a damaged copy of a run before: made again
    if not in_source:
        log.error("%s: file %s is in neither store", area, key)
        counts.missing += 1
        return
    wanted = _wanted(item, source)
    if item.size is not None and wanted[0] != item.size:
        log.error("%s: file %s does not have the size its row keeps, not moved", area, key)
        counts.damaged += 1
        return
    with source.open(key) as fh:
        stored = target.write_stream(key, iter(lambda: fh.read(1 << 20), b""))
    if (stored.size, stored.checksum) != wanted or _measured(target, key) != wanted:
        log.error("%s: file %s does not match its checksum, not moved", area, key)
        target.delete(key)
        counts.damaged += 1
        return
    source.delete(key)
    counts.moved += 1


def _wanted(item: Expected, source: BackupStorage) -> tuple[int, str] | None:
    """What the copy must be: the row's size and sha256, or the source's own bytes."""
    if item.sha256:
        return (item.size if item.size is not None else -1), item.sha256
    return _measured(source, item.key)


def _measured(storage: BackupStorage, key: str) -> tuple[int, str] | None:
    """Size and sha256 of the stored bytes; None when they cannot be read (missing)."""
    try:
        return measure(storage, key)
    except StorageError:
        return None


def rows_of(query, id_column) -> Iterator[Expected]:
    """The files a table's rows point to, 500 rows at a time in id order (a million
    rows are never loaded at once). `query` selects id, key, size, sha256."""

    last_id = 0
    while rows := db.session.execute(
        query.where(id_column > last_id).order_by(id_column).limit(500)
    ).all():
        for _id, key, size, sha256 in rows:
            yield Expected(key, size, sha256 or "")
        last_id = rows[-1][0]
        db.session.rollback()  # nothing written here; let go of the rows read
