"""Recovery that says what it will do and does what it says (issue 17, point 1).

Before every restore of a backup and every undo of an import the portal shows a
confirmation page filled by a dry run: the backup is loaded into the scratch tables of
service.py (private to the connection), every line and every member of the group is
classified by set-based SQL into the table `backup_plan`, and the counts and a few
example addresses are read from it - then the transaction is rolled back, so nothing is
written. The confirmed restore (run_restore, on a worker) and the undo (service.run_undo)
build the same plan again in their own transaction and apply it, so the counts they
record are the plan's: what the page showed, unless the group changed in between (then
the restore says so, see docs/decisions/backups-restore-and-undo.md).

Kinds of a restore's plan (per backup line, or per member the backup does not hold):
  set_back      in the group, differs from the backup (names, custom fields the backup
                has a column for, tags, sign-up and sign-off data) - set back
  added         not in the group now (or no contact any more) - added back
  brought_back  "to be deleted" now but not then - restored and set back
  kept          signed off or signed up again after the backup - left alone
  unchanged     as in the backup - not touched, not counted as changed
  removed       in the group now, not in the backup - leaves it ("exact" mode only)
  orphaned      the same, and in no other group: also goes "to be deleted"
Forgotten addresses (suppression list) are never loaded, only counted: left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from portal import clock, events
from portal.backups import service
from portal.backups.models import Backup, BackupRestore, RestoreMode, UndoStatus
from portal.contacts.models import Group
from portal.core import audit, sql
from portal.core.errors import ServiceError
from portal.core.storage import BackupStorage, get_storage
from portal.extensions import db
from portal.imports.models import ImportJob

if TYPE_CHECKING:
    from portal.accounts.models import User

EXAMPLES = 3  # example addresses shown per kind
RESTORE_KINDS = ("set_back", "added", "brought_back", "kept", "unchanged", "removed", "orphaned")
UNDO_KINDS = ("set_back", "removed", "deleted")
_NO_ID = -1  # a group or backup that does not exist (matches no row)


class RestoreRefused(ServiceError):
    """The restore cannot run now (the message says why)."""


@dataclass
class Preview:
    """What a restore or an undo will do: counts per kind and example addresses."""

    counts: dict[str, int]
    examples: dict[str, list[str]] = field(default_factory=dict)
    forgotten: int = 0  # backup lines left out: forgotten since (never shown by address)

    def count(self, kind: str) -> int:
        return self.counts.get(kind, 0)

    @property
    def removed(self) -> int:
        """Members the backup does not hold (they leave the group in "exact" mode)."""
        return self.count("removed") + self.count("orphaned")

    @property
    def modes_differ(self) -> bool:
        return self.removed > 0

    def outcome(self, mode: str) -> dict[str, int]:
        """The counts the restore in `mode` records (those the page shows for it)."""
        exact = mode == RestoreMode.EXACT
        return {
            "set_back": self.count("set_back"),
            "added": self.count("added"),
            "brought_back": self.count("brought_back"),
            "removed": self.removed if exact else 0,
            "to_be_deleted": self.count("orphaned") if exact else 0,
            "kept": self.count("kept"),
            "forgotten": self.forgotten,
            "unchanged": self.count("unchanged"),
        }


# --- shared SQL ------------------------------------------------------------------------


def _match_contacts(account_id: int) -> None:
    """Which contact each line of the backup is (forgotten and purged ones: none)."""
    service._execute(
        """UPDATE backup_undo_rows SET contact_id = c.id FROM contacts c
           WHERE c.account_id = :acc AND c.email = backup_undo_rows.email""",
        acc=account_id,
    )
    if sql.strategy().analyze:  # contact_id is set now
        db.session.execute(text("ANALYZE backup_undo_rows"))


_NOW_TAGS = """SELECT ct.contact_id, t.name FROM contact_tags ct JOIN tags t ON t.id = ct.tag_id
    WHERE ct.contact_id IN (SELECT contact_id FROM backup_undo_rows)"""
_BACKUP_TAGS = """SELECT u.contact_id, bt.name FROM backup_undo_tags bt
    JOIN backup_undo_rows u ON u.line = bt.line WHERE u.contact_id IS NOT NULL"""


def _find_tag_differences() -> None:
    """backup_tag_diff: the matched contacts whose tags are not exactly their line's -
    two set differences (hash joins), not two correlated subqueries per line."""
    for first, second in ((_NOW_TAGS, _BACKUP_TAGS), (_BACKUP_TAGS, _NOW_TAGS)):
        service._execute(
            f"""INSERT INTO backup_tag_diff (contact_id)
               SELECT DISTINCT d.contact_id FROM ({first} EXCEPT {second}) d WHERE true
               ON CONFLICT (contact_id) DO NOTHING"""  # noqa: S608  # nosec B608  # constants only
        )


_TAGS_DIFFER = "u.contact_id IN (SELECT contact_id FROM backup_tag_diff)"


def _master_data_differs(fragment: dict[str, str]) -> str:
    """Names, custom fields or tags of `contacts` differ from the line `u`."""
    return f"""(COALESCE(contacts.first_name, '') <> COALESCE(u.first_name, '')
       OR COALESCE(contacts.last_name, '') <> COALESCE(u.last_name, '')
       OR {fragment["contact_fields_differ"]} OR {_TAGS_DIFFER})"""


def _subscription_differs(fragment: dict[str, str]) -> str:
    d = fragment["differ"]
    return f"""(s.active <> u.active OR s.activated_at {d} u.activated_at
       OR s.deactivated_at {d} u.deactivated_at OR s.optout_reason {d} u.optout_reason)"""


def _image_differs(fragment: dict[str, str]) -> str:
    """`contacts` differs from its before image `u` (what the undo sets back)."""
    tags, tag_id, d = fragment["image_tags"], fragment["tag_id"], fragment["differ"]
    return f"""(contacts.first_name <> u.first_name OR contacts.last_name <> u.last_name
       OR contacts.status <> u.status OR contacts.deleted_at {d} u.deleted_at
       OR {fragment["contact_fields_differ"]}
       OR EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.contact_id = contacts.id
                  AND NOT EXISTS (SELECT 1 FROM import_before_images b {tags}
                                  WHERE b.import_id = :iid AND b.contact_id = contacts.id
                                    AND {tag_id} = ct.tag_id))
       OR EXISTS (SELECT 1 FROM import_before_images b {tags}
                  WHERE b.import_id = :iid AND b.contact_id = contacts.id
                    AND NOT EXISTS (SELECT 1 FROM contact_tags ct
                                    WHERE ct.contact_id = contacts.id
                                      AND ct.tag_id = {tag_id})))"""  # noqa: S608  # nosec B608  # dialect constants only


def _counts() -> dict[str, int]:
    return {
        kind: int(n)
        for kind, n in db.session.execute(
            text("SELECT kind, COUNT(*) FROM backup_plan GROUP BY kind")
        )
    }


def _examples(kinds: tuple[str, ...], counts: dict[str, int]) -> dict[str, list[str]]:
    """A few addresses per kind (the contact's, or the backup's for one not there yet)."""
    found: dict[str, list[str]] = {}
    for kind in kinds:
        if kind == "unchanged" or not counts.get(kind):
            continue
        found[kind] = list(
            db.session.scalars(
                service._clause(
                    """SELECT COALESCE(c.email, u.email) FROM backup_plan p
                       LEFT JOIN contacts c ON c.id = p.contact_id
                       LEFT JOIN backup_undo_rows u ON u.line = p.line
                       WHERE p.kind = :kind
                       ORDER BY COALESCE(c.email, u.email) LIMIT :n""",
                    kind=kind,
                    n=EXAMPLES,
                )
            )
        )
    return found


# --- restore: the plan -----------------------------------------------------------------


def find_target(backup: Backup) -> Group | None:
    """The group a restore goes into, without creating it: the original group, else one
    of the same name (case ignored). None: the restore will create it again."""
    group = db.session.get(Group, backup.group_id) if backup.group_id else None
    if group is not None and group.account_id == backup.account_id:
        return group
    return db.session.scalar(
        select(Group)
        .where(Group.account_id == backup.account_id)
        .where(db.func.lower(Group.name) == backup.group_name.lower())
        .order_by(Group.id)
        .limit(1)
    )


def _merge_fields(field_keys: list[str]) -> None:
    """A backup line's custom fields as the restore writes them: the contact's values of
    fields the backup has no column for (defined after it) are kept, the others become
    the backup's (an empty cell removes the value)."""
    if sql.is_postgres():
        minus = " - CAST(:keys AS text[])" if field_keys else ""
        service._execute(
            f"""UPDATE backup_undo_rows SET fields = CAST(
                   (COALESCE(CAST(c.fields AS jsonb), CAST('{{}}' AS jsonb)){minus})
                   || CAST(backup_undo_rows.fields AS jsonb) AS text)
               FROM contacts c WHERE c.id = backup_undo_rows.contact_id""",  # noqa: S608  # nosec B608  # constants only
            keys=field_keys,
        )
        return
    paths = {f"k{i}": f'$."{key}"' for i, key in enumerate(field_keys)}
    removal = "".join(f", :{name}" for name in paths)
    service._execute(
        f"""UPDATE backup_undo_rows SET fields = json_patch(
               json_remove(COALESCE(c.fields, '{{}}'){removal}), backup_undo_rows.fields)
           FROM contacts c WHERE c.id = backup_undo_rows.contact_id""",  # noqa: S608  # nosec B608  # bound names only
        **paths,
    )


def _backup_field_keys(backup: Backup, storage: BackupStorage) -> list[str]:
    rows = service._rows(storage, backup.storage_key, None)
    try:
        header = next(rows)
    finally:
        rows.close()
    return [
        h.strip().removeprefix(service.m.CUSTOM_PREFIX)
        for h in header
        if h.strip().startswith(service.m.CUSTOM_PREFIX)
    ]


def _plan_restore(backup: Backup, group: Group | None, storage: BackupStorage) -> Preview:
    """Load the verified backup and classify, in the caller's transaction."""
    service.verify(backup, storage)
    loaded = service._load_scratch(backup, storage)
    fragment = sql.fragments()
    p = {
        "acc": backup.account_id,
        "gid": group.id if group is not None else _NO_ID,
        "bid": backup.id,
        "since": backup.created_at,
    }
    _match_contacts(backup.account_id)
    _merge_fields(_backup_field_keys(backup, storage))
    _find_tag_differences()
    service._execute(
        f"""INSERT INTO backup_plan (line, contact_id, kind)
           SELECT u.line, u.contact_id, CASE
             WHEN u.contact_id IS NULL THEN 'added'
             WHEN s.id IS NOT NULL AND s.active <> u.active
                  AND (s.deactivated_at > :since OR s.activated_at > :since) THEN 'kept'
             WHEN contacts.status = 'deleted' AND NOT EXISTS (
                  SELECT 1 FROM backup_pending_deletions pd
                  WHERE pd.backup_id = :bid AND pd.contact_id = contacts.id) THEN 'brought_back'
             WHEN s.id IS NULL THEN 'added'
             WHEN {_master_data_differs(fragment)}
               OR {_subscription_differs(fragment)} THEN 'set_back'
             ELSE 'unchanged' END
           FROM backup_undo_rows u
           LEFT JOIN contacts ON contacts.id = u.contact_id
           LEFT JOIN subscriptions s ON s.group_id = :gid AND s.contact_id = u.contact_id""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    service._execute(
        """INSERT INTO backup_plan (contact_id, kind)
           SELECT s.contact_id, CASE WHEN c.status = 'active' AND NOT EXISTS (
                    SELECT 1 FROM subscriptions o
                    WHERE o.contact_id = s.contact_id AND o.group_id <> :gid)
                  THEN 'orphaned' ELSE 'removed' END
           FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
           WHERE s.group_id = :gid AND s.account_id = :acc AND NOT EXISTS (
               SELECT 1 FROM backup_undo_rows u WHERE u.contact_id = s.contact_id)""",
        **p,
    )
    if sql.strategy().analyze:
        db.session.execute(text("ANALYZE backup_plan"))
    counts = _counts()
    return Preview(
        counts=counts,
        examples=_examples(RESTORE_KINDS, counts),
        forgotten=max(0, backup.contact_count - loaded),
    )


def restore_preview(backup: Backup, storage: BackupStorage | None = None) -> Preview:
    """The dry run of a restore: what it would do now. Writes nothing (the caller's
    transaction is rolled back: call it with nothing pending). Raises BackupUnreadable
    for a damaged or missing file."""
    try:
        return _plan_restore(backup, find_target(backup), storage or get_storage())
    finally:
        service.drop_scratch()
        db.session.rollback()


# --- restore: the work -----------------------------------------------------------------

_TOUCHED = "('set_back', 'added', 'brought_back')"


def _apply_restore(backup: Backup, group: Group, mode: str, preview: Preview) -> None:
    """Apply the plan in the scratch tables (same transaction)."""
    fragment = sql.fragments()
    now = clock.now()
    p = {"acc": backup.account_id, "gid": group.id, "now": now}
    service.fill_search_names(
        f"u.line IN (SELECT line FROM backup_plan WHERE kind IN {_TOUCHED})"  # noqa: S608  # nosec B608  # constants only
    )
    # contacts "to be deleted" since the backup come back
    service._emit(
        events.CONTACT_RESTORED,
        "SELECT contact_id FROM backup_plan WHERE kind = 'brought_back'",
        **p,
    )
    service._execute(
        """UPDATE contacts SET status = 'active', deleted_at = NULL, updated_at = :now
           WHERE id IN (SELECT contact_id FROM backup_plan WHERE kind = 'brought_back')""",
        **p,
    )
    # contacts that no longer exist (purged since - never forgotten ones) are created
    service._execute(
        f"""INSERT INTO contacts (account_id, email, first_name, last_name, fields, status,
               created_at, updated_at, search_name, search_name_rev)
           SELECT :acc, u.email, COALESCE(u.first_name, ''), COALESCE(u.last_name, ''),
               {fragment["json"].format("u.fields")}, 'active', :now, :now, u.search_name,
               u.search_name_rev
           FROM backup_undo_rows u WHERE u.contact_id IS NULL""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    _match_contacts(backup.account_id)
    service._execute(
        """UPDATE backup_plan SET contact_id = (
               SELECT u.contact_id FROM backup_undo_rows u WHERE u.line = backup_plan.line)
           WHERE contact_id IS NULL AND line IS NOT NULL""",
        **p,
    )
    service._emit(
        events.CONTACT_CREATED,
        "SELECT c.id AS contact_id FROM contacts c WHERE c.account_id = :acc "
        "AND c.created_at = :now AND c.id IN (SELECT contact_id FROM backup_plan "
        "WHERE kind = 'added')",
        **p,
    )
    # names and custom fields as in the backup
    service._execute(
        f"""UPDATE contacts SET first_name = COALESCE(u.first_name, ''),
               last_name = COALESCE(u.last_name, ''), search_name = u.search_name,
               search_name_rev = u.search_name_rev,
               fields = {fragment["json"].format("u.fields")}, updated_at = :now
           FROM backup_undo_rows u JOIN backup_plan pl ON pl.line = u.line
           WHERE contacts.id = u.contact_id AND pl.kind IN {_TOUCHED}
             AND (COALESCE(contacts.first_name, '') <> COALESCE(u.first_name, '')
                  OR COALESCE(contacts.last_name, '') <> COALESCE(u.last_name, '')
                  OR {fragment["contact_fields_differ"]})""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    # tags exactly as in the backup
    service._execute(
        f"""INSERT INTO tags (account_id, name, created_at)
           SELECT DISTINCT :acc, t.name, :now FROM backup_undo_tags t
           JOIN backup_plan pl ON pl.line = t.line WHERE pl.kind IN {_TOUCHED}
           ON CONFLICT (account_id, name) DO NOTHING""",  # noqa: S608  # nosec B608  # constants only
        **p,
    )
    service._execute(
        f"""INSERT INTO backup_undo_links (contact_id, tag_id)
           SELECT DISTINCT pl.contact_id, tg.id FROM backup_undo_tags t
           JOIN backup_plan pl ON pl.line = t.line
           JOIN tags tg ON tg.account_id = :acc AND tg.name = t.name
           WHERE pl.kind IN {_TOUCHED}""",  # noqa: S608  # nosec B608  # constants only
        **p,
    )
    service._execute(
        f"""DELETE FROM contact_tags
           WHERE contact_id IN (SELECT contact_id FROM backup_plan WHERE kind IN {_TOUCHED})
             AND NOT EXISTS (SELECT 1 FROM backup_undo_links l
                             WHERE l.contact_id = contact_tags.contact_id
                               AND l.tag_id = contact_tags.tag_id)""",  # noqa: S608  # nosec B608  # constants only
        **p,
    )
    service._execute(
        """INSERT INTO contact_tags (contact_id, tag_id)
           SELECT contact_id, tag_id FROM backup_undo_links WHERE true
           ON CONFLICT (contact_id, tag_id) DO NOTHING""",
        **p,
    )
    # sign-up and sign-off data as in the backup ("kept" lines are not touched)
    d = fragment["differ"]
    service._execute(
        f"""UPDATE subscriptions SET active = u.active, activated_at = u.activated_at,
               deactivated_at = u.deactivated_at, optout_reason = u.optout_reason
           FROM backup_undo_rows u JOIN backup_plan pl ON pl.line = u.line
           WHERE subscriptions.group_id = :gid AND subscriptions.contact_id = u.contact_id
             AND pl.kind IN {_TOUCHED}
             AND (subscriptions.active <> u.active
                  OR subscriptions.activated_at {d} u.activated_at
                  OR subscriptions.deactivated_at {d} u.deactivated_at
                  OR subscriptions.optout_reason {d} u.optout_reason)""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    service._execute(
        f"""INSERT INTO subscriptions (account_id, contact_id, group_id, active, activated_at,
               deactivated_at, optout_reason, source)
           SELECT :acc, u.contact_id, :gid, u.active, u.activated_at, u.deactivated_at,
               u.optout_reason, 'restore'
           FROM backup_undo_rows u JOIN backup_plan pl ON pl.line = u.line
           WHERE pl.kind IN {_TOUCHED} AND u.contact_id IS NOT NULL
           ON CONFLICT (contact_id, group_id) DO NOTHING""",  # noqa: S608  # nosec B608  # constants only
        **p,
    )
    service._emit(
        events.CONTACT_UPDATED,
        "SELECT contact_id FROM backup_plan WHERE kind IN ('set_back', 'brought_back')",
        **p,
    )
    if mode != RestoreMode.EXACT:
        return
    # exact: who joined the group after the backup leaves it; nobody is erased - a
    # contact left in no group goes "to be deleted" (restorable until the purge)
    service._emit(
        events.CONTACT_DELETED,
        "SELECT contact_id FROM backup_plan WHERE kind = 'orphaned'",
        **p,
    )
    service._emit(
        events.CONTACT_UPDATED, "SELECT contact_id FROM backup_plan WHERE kind = 'removed'", **p
    )
    service._execute(
        """DELETE FROM subscriptions WHERE group_id = :gid AND contact_id IN (
               SELECT contact_id FROM backup_plan WHERE kind IN ('removed', 'orphaned'))""",
        **p,
    )
    service._execute(
        """UPDATE contacts SET status = 'deleted', deleted_at = :now, updated_at = :now
           WHERE account_id = :acc AND status = 'active' AND id IN (
               SELECT contact_id FROM backup_plan WHERE kind = 'orphaned')""",
        **p,
    )


def request_restore(
    backup: Backup, *, mode: str, expected: dict[str, int], actor: User | None
) -> BackupRestore:
    """Record the confirmed restore (committed by the caller before it is enqueued).
    `expected` are the counts the confirmation page showed for the chosen mode."""
    if mode not in (RestoreMode.EXACT.value, RestoreMode.ADD_MISSING.value):
        raise RestoreRefused(_l("Please choose how the backup should be restored."))
    if restore_running(backup) is not None:
        raise RestoreRefused(_l("This backup is being restored."))
    restore = BackupRestore(
        account_id=backup.account_id,
        backup_id=backup.id,
        group_id=backup.group_id,
        group_name=backup.group_name,
        mode=mode,
        created_by_id=getattr(actor, "id", None),
        expected={k: int(v) for k, v in expected.items() if k in Preview({}).outcome(mode)},
    )
    db.session.add(restore)
    db.session.flush()
    return restore


def restore_running(backup: Backup) -> BackupRestore | None:
    return db.session.scalar(
        select(BackupRestore).where(
            BackupRestore.backup_id == backup.id,
            BackupRestore.status.in_((UndoStatus.QUEUED.value, UndoStatus.RUNNING.value)),
        )
    )


def latest_restores(account_id: int) -> dict[int, BackupRestore]:
    """The newest restore of each of the account's backups, by backup id."""
    newest: dict[int, BackupRestore] = {}
    for restore in db.session.scalars(
        select(BackupRestore)
        .where(BackupRestore.account_id == account_id, BackupRestore.backup_id.is_not(None))
        .order_by(BackupRestore.id)
    ):
        newest[restore.backup_id] = restore
    return newest


def run_restore(restore: BackupRestore, storage: BackupStorage | None = None) -> None:
    """Plan again and apply, in one transaction: all or nothing. The counts recorded are
    the plan's; when they differ from those the page showed, the group changed between
    the page and the confirmation and `changed_meanwhile` says so."""
    storage = storage or get_storage()
    if restore.status == UndoStatus.FINISHED:
        return
    restore.status = UndoStatus.RUNNING.value
    db.session.commit()
    try:
        backup = service.live_backup(restore.account_id, restore.backup_id)
        if backup is None:
            raise RestoreRefused(_l("This backup has expired and is being deleted."))
        group = service._target_group(backup, restore.created_by, None)
        db.session.flush()
        sql.lock_group(group.id)  # imports into the group wait while it is set back
        if service._import_running_into(group.id):
            raise RestoreRefused(
                _l("Another import into this group is running. Please wait until it has finished.")
            )
        preview = _plan_restore(backup, group, storage)
        _apply_restore(backup, group, restore.mode, preview)
        service.drop_scratch()
        counts = preview.outcome(restore.mode)
        restore = db.session.get(BackupRestore, restore.id)
        restore.group_id, restore.group_name = group.id, group.name
        restore.counts = counts
        restore.changed_meanwhile = bool(restore.expected) and any(
            k in restore.expected and restore.expected[k] != counts[k] for k in counts
        )
        restore.status = UndoStatus.FINISHED.value
        restore.finished_at = clock.now()
        audit.record(
            "backup.restored",
            account=service._account(backup.account_id),
            actor=restore.created_by,
            object_type="backup",
            object_id=backup.id,
            details={"name": backup.group_name, "group_id": group.id, "mode": restore.mode}
            | counts,
        )
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        restore = db.session.get(BackupRestore, restore.id)
        restore.status = UndoStatus.FAILED.value
        restore.error = str(exc.args[0]) if isinstance(exc, ServiceError) else ""
        restore.finished_at = clock.now()
        db.session.commit()
        if not isinstance(exc, ServiceError):
            raise


# --- undo of an import: the plan ---------------------------------------------------------


def undo_since(job: ImportJob, backup: Backup | None) -> datetime:
    """Contacts created from this moment on were created by the import (or later)."""
    if backup is not None:
        return backup.created_at
    return job.started_at or job.created_at


def plan_undo(job: ImportJob, backup: Backup | None, storage: BackupStorage) -> Preview:
    """Classify, in the caller's transaction, what the undo changes: contacts set back
    (the backup's data differs, or the import changed them - before images), members
    the backup does not hold (removed), and of those the contacts the import created
    that belong to no other group (deleted). Without a backup (the group was empty
    before the import) everyone in the group now leaves it."""
    if backup is not None:
        service.verify(backup, storage)
        service._load_scratch(backup, storage)
    else:
        service.create_scratch()
    fragment = sql.fragments()
    finished = job.finished_at or clock.now()
    p = {
        "acc": job.account_id,
        "gid": job.group_id,
        "bid": backup.id if backup is not None else _NO_ID,
        "iid": job.id,
        "since": undo_since(job, backup),
        "finished": finished,
    }
    _match_contacts(job.account_id)
    _find_tag_differences()
    consent_allowed = """(s.active = u.active
            OR (u.active AND (s.deactivated_at IS NULL OR s.deactivated_at <= :finished))
            OR (NOT u.active AND (s.activated_at IS NULL OR s.activated_at <= :finished)))"""
    service._execute(
        f"""INSERT INTO backup_plan (contact_id, kind)
           SELECT DISTINCT x.contact_id, 'set_back' FROM (
             SELECT u.contact_id FROM backup_undo_rows u
             JOIN contacts ON contacts.id = u.contact_id
             LEFT JOIN subscriptions s ON s.group_id = :gid AND s.contact_id = u.contact_id
             WHERE s.id IS NULL OR {_master_data_differs(fragment)}
                OR ({_subscription_differs(fragment)} AND {consent_allowed})
                OR (contacts.status <> 'deleted' AND EXISTS (
                    SELECT 1 FROM backup_pending_deletions pd
                    WHERE pd.backup_id = :bid AND pd.contact_id = contacts.id))
             UNION
             SELECT u.contact_id FROM import_before_images u
             JOIN contacts ON contacts.id = u.contact_id
             WHERE u.import_id = :iid AND {_image_differs(fragment)}
           ) x""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    service._execute(
        """INSERT INTO backup_plan (contact_id, kind)
           SELECT s.contact_id, CASE WHEN c.created_at >= :since AND NOT EXISTS (
                    SELECT 1 FROM subscriptions o
                    WHERE o.contact_id = s.contact_id AND o.group_id <> :gid)
                  THEN 'deleted' ELSE 'removed' END
           FROM subscriptions s JOIN contacts c ON c.id = s.contact_id
           WHERE s.group_id = :gid AND s.account_id = :acc AND NOT EXISTS (
               SELECT 1 FROM backup_undo_rows u WHERE u.contact_id = s.contact_id)""",
        **p,
    )
    counts = _counts()
    counts["removed"] = counts.get("removed", 0) + counts.get("deleted", 0)
    return Preview(counts=counts, examples=_undo_examples(counts))


def _undo_examples(counts: dict[str, int]) -> dict[str, list[str]]:
    examples = _examples(("set_back", "deleted"), counts)
    removed = list(
        db.session.scalars(
            service._clause(
                """SELECT c.email FROM backup_plan p JOIN contacts c ON c.id = p.contact_id
                   WHERE p.kind IN ('removed', 'deleted') ORDER BY c.email LIMIT :n""",
                n=EXAMPLES,
            )
        )
    )
    if removed:
        examples["removed"] = removed
    return examples


def undo_preview(job: ImportJob, storage: BackupStorage | None = None) -> Preview:
    """The dry run of the undo of `job`: writes nothing (rolled back). Raises
    BackupUnreadable for a damaged or missing backup file."""
    backup = service.live_backup(job.account_id, job.backup_id)
    try:
        return plan_undo(job, backup, storage or get_storage())
    finally:
        service.drop_scratch()
        db.session.rollback()


def describe_counts(counts: dict[str, Any]) -> dict[str, int]:
    return {k: int(counts.get(k, 0)) for k in Preview({}).outcome(RestoreMode.EXACT)}
