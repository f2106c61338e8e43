"""Reading a backup: the verified file (size and sha256 against the row, before the
first byte), its rows without forgotten addresses, the download, and the account's list
of live backups.

A backup is a gzip-compressed CSV in exactly the import format (imports/portal_format),
UTF-8 with BOM, every cell formula-guarded. Every read (download, restore, undo) first
checks the file against the sha256 on the row; a damaged or missing file is refused with
a message and nothing is changed. Forgotten addresses (suppression list) are left out of
every read: a backup never brings a forgotten person back. See docs/decisions/backups-*.md."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import clock, excel_csv
from portal.accounts.models import Account
from portal.backups.models import Backup
from portal.core import audit, privacy
from portal.core.errors import ServiceError
from portal.core.privacy import Suppression
from portal.core.storage import BackupStorage, FileDamaged, StorageError, get_storage, measure
from portal.extensions import db
from portal.imports.portal_format import unguard

if TYPE_CHECKING:
    from portal.accounts.models import Account, User
    from portal.excel_csv import ExcelCsv

log = logging.getLogger(__name__)

ROWS_PER_CHUNK = 2000  # CSV rows compressed and handed to the storage at a time
FETCH_ROWS = 5000  # rows per round trip of the server-side cursor
READ_BYTES = 1 << 20


class BackupUnreadable(ServiceError):
    """The backup file is missing or damaged; nothing was read from it."""


MISSING = _l(
    "The backup file could not be found, so this backup cannot be used. Nothing has been "
    "downloaded or restored. Please contact the support team."
)

DAMAGED = _l(
    "The backup file is damaged (its checksum does not match), so it is refused. Nothing has "
    "been downloaded or restored. Please contact the support team."
)


def account_of(account_id: int) -> Account:

    return db.session.get(Account, account_id)


def verify(backup: Backup, storage: BackupStorage | None = None) -> None:
    """Raise BackupUnreadable unless the stored file has the row's size and sha256."""
    storage = storage or get_storage()
    try:
        size, checksum = measure(storage, backup.storage_key)
    except FileDamaged as exc:  # a store that checks its own sha256 (S3) refused the bytes
        log.error("backup %s: %s", backup.id, exc)
        raise BackupUnreadable(DAMAGED) from exc
    except StorageError as exc:
        log.error("backup %s: %s", backup.id, exc)
        raise BackupUnreadable(MISSING) from exc
    if size != backup.size or checksum != backup.checksum:
        log.error(
            "backup %s: checksum mismatch (size %s, expected %s)", backup.id, size, backup.size
        )
        raise BackupUnreadable(DAMAGED)


def forgotten_filter(account_id: int) -> Callable[[str], bool] | None:
    """A test "is this address forgotten?" for the account, or None when it has no
    forgotten addresses (then nothing needs hashing)."""
    hashes = set(
        db.session.scalars(
            select(Suppression.email_hash).where(Suppression.account_id == account_id)
        )
    )
    if not hashes:
        return None
    hash_ = privacy.hasher()
    return lambda email: hash_(unguard(email).strip().lower()) in hashes


def read_rows(
    storage: BackupStorage, key: str, skip: Callable[[str], bool] | None
) -> Iterator[list[str]]:
    """The stored CSV as rows (header first), without forgotten addresses."""
    try:
        with (
            storage.open(key) as raw,
            gzip.open(raw, "rt", encoding="utf-8-sig", newline="") as fh,
        ):
            reader = csv.reader(fh)
            yield next(reader)
            for cells in reader:
                if skip is not None and cells and skip(cells[0]):
                    continue
                yield cells
    except FileDamaged as exc:
        raise BackupUnreadable(DAMAGED) from exc
    except StorageError as exc:
        raise BackupUnreadable(MISSING) from exc
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise BackupUnreadable(DAMAGED) from exc


def download_stream(
    backup: Backup, storage: BackupStorage | None = None, excel: ExcelCsv | None = None
) -> Iterator[bytes]:
    """The backup as the CSV users download (UTF-8 with BOM). The file is verified
    before the first byte; forgotten addresses are left out. With `excel` (the backups
    page) the file is the one for Excel in the reader's language (portal/excel_csv.py);
    without it (the API) it is the stored machine format. The stored file never changes:
    restore and undo read it."""
    storage = storage or get_storage()
    verify(backup, storage)
    skip = forgotten_filter(backup.account_id)
    if excel is not None:
        return excel.encode(read_rows(storage, backup.storage_key, skip))
    if skip is None:
        return _plain_bytes(storage, backup.storage_key)
    return _filtered_bytes(storage, backup.storage_key, skip)


def _plain_bytes(storage: BackupStorage, key: str) -> Iterator[bytes]:
    with storage.open(key) as raw, gzip.open(raw, "rb") as fh:
        while chunk := fh.read(READ_BYTES):
            yield chunk


def _filtered_bytes(storage: BackupStorage, key: str, skip) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    for count, cells in enumerate(read_rows(storage, key, skip), start=1):
        writer.writerow(cells)
        if count % ROWS_PER_CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_csv(backup: Backup, path: Path, storage: BackupStorage | None = None) -> int:
    """Write the verified backup as a plain CSV file (for a restore); returns the rows."""
    storage = storage or get_storage()
    verify(backup, storage)
    skip = forgotten_filter(backup.account_id)
    rows = -1
    with Path(path).open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        for cells in read_rows(storage, backup.storage_key, skip):
            writer.writerow(cells)
            rows += 1
    return rows


def download_filenames(backup: Backup, zone: ZoneInfo | None = None) -> tuple[str, str]:
    """(ASCII, readable) names in the zone's local time, without spaces:
    backup-<group>-<YYYY-MM-DD-HHMM>.csv (the time the backup was made)."""
    return excel_csv.file_names(
        "backup", backup.group_name, backup.created_at, zone or ZoneInfo("UTC"), "csv"
    )


def download_filename(backup: Backup, zone: ZoneInfo | None = None) -> str:
    """The ASCII name (the header's fallback name)."""
    return download_filenames(backup, zone)[0]


def record_download(backup: Backup, *, actor: User | None, ip: str | None = None) -> None:
    audit.record(
        "backup.downloaded",
        account=account_of(backup.account_id),
        actor=actor,
        object_type="backup",
        object_id=backup.id,
        details={"name": backup.group_name, "contacts": backup.contact_count},
        ip=ip,
    )


def list_backups(account: Account, now: datetime | None = None) -> list[Backup]:
    """The account's live backups, by group name and then newest first."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(Backup)
            .where(Backup.account_id == account.id, Backup.expires_at > now)
            .order_by(
                func.lower(Backup.group_name),
                Backup.group_name,
                Backup.created_at.desc(),
                Backup.id.desc(),
            )
        )
    )


def latest_backups(account: Account, limit: int = 5, now: datetime | None = None) -> list[Backup]:
    """The account's newest live backups, whatever their group (the home page)."""
    now = now or clock.now()
    return list(
        db.session.scalars(
            select(Backup)
            .where(Backup.account_id == account.id, Backup.expires_at > now)
            .order_by(Backup.created_at.desc(), Backup.id.desc())
            .limit(limit)
        )
    )


def live_backup(account_id: int, backup_id: int | None) -> Backup | None:
    """The backup if it exists in this account and has not expired."""
    if backup_id is None:
        return None
    return db.session.scalar(
        select(Backup).where(
            Backup.id == backup_id,
            Backup.account_id == account_id,
            Backup.expires_at > clock.now(),
        )
    )
