"""Restoring a backup into its group (not to be confused with undeleting a contact,
lifecycle.service.undelete_contacts, or the import option "restore deleted contacts").

Kinds of a restore's plan (per backup line, or per member the backup does not hold):
  set_back      in the group, differs from the backup (names, custom fields the backup
                has a column for, tags, sign-up and sign-off data) - set back
  added         not in the group now (or no contact any more) - added back
  brought_back  "to be deleted" now but not then - restored and set back
  kept          signed off or signed up again after the backup - left alone
  unchanged     as in the backup - not touched, not counted as changed
  removed       in the group now, not in the backup - leaves it ("exact" mode only)
  orphaned      the same, and in no other group: also goes "to be deleted"

restore_as_import is the older one-click path: the backup as an import in "update and
add" with the sign-up and sign-off data (the import engine decides)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from portal import clock, events
from portal.backups.models import Backup, BackupRestore, RestoreMode, UndoStatus
from portal.backups.read import (
    DAMAGED,
    BackupUnreadable,
    account_of,
    download_filename,
    live_backup,
    read_rows,
    verify,
    write_csv,
)
from portal.backups.scratch import (
    NO_ID,
    Preview,
    drop_scratch,
    emit_contacts,
    fill_search_names,
    find_tag_differences,
    import_running_into,
    load_scratch,
    master_data_differs,
    match_contacts,
    plan_counts,
    plan_examples,
    run_sql,
    set_tags_exactly,
    subscription_differs,
)
from portal.contacts import service as contacts
from portal.contacts.models import Group
from portal.core import audit, sql
from portal.core.errors import ServiceError
from portal.core.storage import BackupStorage, get_storage
from portal.extensions import db
from portal.imports import service as imports
from portal.imports.models import ImportJob
from portal.imports.portal_format import CUSTOM_PREFIX

if TYPE_CHECKING:
    from portal.accounts.models import User


def _target_group(backup: Backup, actor: User | None, ip: str | None) -> Group:
    """The original group; when it was deleted, a group of that name (recreated if need be)."""
    account = account_of(backup.account_id)
    group = db.session.get(Group, backup.group_id) if backup.group_id else None
    if group is not None and group.account_id == account.id:
        return group
    group = db.session.scalar(
        select(Group)
        .where(Group.account_id == account.id, func.lower(Group.name) == backup.group_name.lower())
        .order_by(Group.id)
        .limit(1)
    )
    if group is not None:
        return group
    return contacts.create_group(account, backup.group_name, actor=actor, source="ui", ip=ip)


def restore_as_import(backup: Backup, *, actor: User | None, ip: str | None = None) -> ImportJob:
    """Prepare the one-click restore: an import in "update and add" with the sign-up and
    sign-off data, into the original group. The caller enqueues it (imports.tasks
    .enqueue_run) and shows the import's progress page. The engine never reactivates
    an unsubscribed contact unless the backup's sign-up is newer than the sign-off, and
    the file holds no forgotten address. Source "restore" makes no new backup."""
    account = account_of(backup.account_id)
    with tempfile.TemporaryDirectory(prefix="portal-restore-") as tmp:
        path = Path(tmp) / "backup.csv"
        write_csv(backup, path)
        group = _target_group(backup, actor, ip)
        try:
            job = imports.create_import(
                account,
                actor=actor,
                group=group,
                source_path=path,
                filename=download_filename(backup),
                source="restore",
            )
        except imports.ImportRefused as exc:
            raise BackupUnreadable(DAMAGED) from exc
    imports.configure(
        job, mapping=job.mapping, mode="update_add", import_consent=True, restore_deleted=False
    )
    audit.record(
        "backup.restored",
        account=account,
        actor=actor,
        object_type="backup",
        object_id=backup.id,
        details={"name": backup.group_name, "group_id": group.id, "import_id": job.id},
        ip=ip,
    )
    return job


RESTORE_KINDS = ("set_back", "added", "brought_back", "kept", "unchanged", "removed", "orphaned")


class RestoreRefused(ServiceError):
    """The restore cannot run now (the message says why)."""


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
        run_sql(
            f"""UPDATE backup_undo_rows SET fields = CAST(
                   (COALESCE(CAST(c.fields AS jsonb), CAST('{{}}' AS jsonb)){minus})
                   || CAST(backup_undo_rows.fields AS jsonb) AS text)
               FROM contacts c WHERE c.id = backup_undo_rows.contact_id""",  # noqa: S608  # nosec B608  # constants only
            keys=field_keys,
        )
        return
    paths = {f"k{i}": f'$."{key}"' for i, key in enumerate(field_keys)}
    removal = "".join(f", :{name}" for name in paths)
    run_sql(
        f"""UPDATE backup_undo_rows SET fields = json_patch(
               json_remove(COALESCE(c.fields, '{{}}'){removal}), backup_undo_rows.fields)
           FROM contacts c WHERE c.id = backup_undo_rows.contact_id""",  # noqa: S608  # nosec B608  # bound names only
        **paths,
    )


def _backup_field_keys(backup: Backup, storage: BackupStorage) -> list[str]:
    rows = read_rows(storage, backup.storage_key, None)
    try:
        header = next(rows)
    finally:
        rows.close()
    return [
        h.strip().removeprefix(CUSTOM_PREFIX) for h in header if h.strip().startswith(CUSTOM_PREFIX)
    ]


def _plan_restore(backup: Backup, group: Group | None, storage: BackupStorage) -> Preview:
    """Load the verified backup and classify, in the caller's transaction."""
    verify(backup, storage)
    loaded = load_scratch(backup, storage)
    fragment = sql.fragments()
    p = {
        "acc": backup.account_id,
        "gid": group.id if group is not None else NO_ID,
        "bid": backup.id,
        "since": backup.created_at,
    }
    match_contacts(backup.account_id)
    _merge_fields(_backup_field_keys(backup, storage))
    find_tag_differences()
    run_sql(
        f"""INSERT INTO backup_plan (line, contact_id, kind)
           SELECT u.line, u.contact_id, CASE
             WHEN u.contact_id IS NULL THEN 'added'
             WHEN s.id IS NOT NULL AND s.active <> u.active
                  AND (s.deactivated_at > :since OR s.activated_at > :since) THEN 'kept'
             WHEN contacts.status = 'deleted' AND NOT EXISTS (
                  SELECT 1 FROM backup_pending_deletions pd
                  WHERE pd.backup_id = :bid AND pd.contact_id = contacts.id) THEN 'brought_back'
             WHEN s.id IS NULL THEN 'added'
             WHEN {master_data_differs(fragment)}
               OR {subscription_differs(fragment)} THEN 'set_back'
             ELSE 'unchanged' END
           FROM backup_undo_rows u
           LEFT JOIN contacts ON contacts.id = u.contact_id
           LEFT JOIN subscriptions s ON s.group_id = :gid AND s.contact_id = u.contact_id""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    run_sql(
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
    counts = plan_counts()
    return Preview(
        counts=counts,
        examples=plan_examples(RESTORE_KINDS, counts),
        forgotten=max(0, backup.contact_count - loaded),
    )


def restore_preview(backup: Backup, storage: BackupStorage | None = None) -> Preview:
    """The dry run of a restore: what it would do now. Writes nothing (the caller's
    transaction is rolled back: call it with nothing pending). Raises BackupUnreadable
    for a damaged or missing file."""
    try:
        return _plan_restore(backup, find_target(backup), storage or get_storage())
    finally:
        drop_scratch()
        db.session.rollback()


_TOUCHED = "('set_back', 'added', 'brought_back')"


def _apply_restore(backup: Backup, group: Group, mode: str, preview: Preview) -> None:
    """Apply the plan in the scratch tables (same transaction)."""
    fragment = sql.fragments()
    now = clock.now()
    p = {"acc": backup.account_id, "gid": group.id, "now": now}
    fill_search_names(
        f"u.line IN (SELECT line FROM backup_plan WHERE kind IN {_TOUCHED})"  # noqa: S608  # nosec B608  # constants only
    )
    _bring_back_contacts(fragment, p)
    _set_back_names_and_fields(fragment, p)
    _set_back_tags(p)
    _set_back_subscriptions(fragment, p)
    emit_contacts(
        events.CONTACT_UPDATED,
        "SELECT contact_id FROM backup_plan WHERE kind IN ('set_back', 'brought_back')",
        **p,
    )
    if mode != RestoreMode.EXACT:
        return
    _remove_later_members(p)


def _bring_back_contacts(fragment: dict[str, str], p: dict[str, Any]) -> None:
    """Contacts "to be deleted" since the backup come back; contacts purged since are
    created again (never forgotten ones: they were not loaded)."""
    # contacts "to be deleted" since the backup come back
    emit_contacts(
        events.CONTACT_RESTORED,
        "SELECT contact_id FROM backup_plan WHERE kind = 'brought_back'",
        **p,
    )
    run_sql(
        """UPDATE contacts SET status = 'active', deleted_at = NULL, updated_at = :now
           WHERE id IN (SELECT contact_id FROM backup_plan WHERE kind = 'brought_back')""",
        **p,
    )
    # contacts that no longer exist (purged since - never forgotten ones) are created
    run_sql(
        f"""INSERT INTO contacts (account_id, email, first_name, last_name, fields, status,
               created_at, updated_at, search_name, search_name_rev)
           SELECT :acc, u.email, COALESCE(u.first_name, ''), COALESCE(u.last_name, ''),
               {fragment["json"].format("u.fields")}, 'active', :now, :now, u.search_name,
               u.search_name_rev
           FROM backup_undo_rows u WHERE u.contact_id IS NULL""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    match_contacts(p["acc"])
    run_sql(
        """UPDATE backup_plan SET contact_id = (
               SELECT u.contact_id FROM backup_undo_rows u WHERE u.line = backup_plan.line)
           WHERE contact_id IS NULL AND line IS NOT NULL""",
        **p,
    )
    emit_contacts(
        events.CONTACT_CREATED,
        "SELECT c.id AS contact_id FROM contacts c WHERE c.account_id = :acc "
        "AND c.created_at = :now AND c.id IN (SELECT contact_id FROM backup_plan "
        "WHERE kind = 'added')",
        **p,
    )


def _set_back_names_and_fields(fragment: dict[str, str], p: dict[str, Any]) -> None:
    """The touched lines' names and custom fields as in the backup."""
    # names and custom fields as in the backup
    run_sql(
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


def _set_back_tags(p: dict[str, Any]) -> None:
    """The touched lines' contacts get exactly the backup's tags."""
    touched = f"SELECT line, contact_id FROM backup_plan WHERE kind IN {_TOUCHED}"  # noqa: S608  # nosec B608  # constants only
    set_tags_exactly(touched, **p)


def _set_back_subscriptions(fragment: dict[str, str], p: dict[str, Any]) -> None:
    """The group's sign-up and sign-off data as in the backup ("kept" lines excepted)."""
    # sign-up and sign-off data as in the backup ("kept" lines are not touched)
    d = fragment["differ"]
    run_sql(
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
    run_sql(
        f"""INSERT INTO subscriptions (account_id, contact_id, group_id, active, activated_at,
               deactivated_at, optout_reason, source)
           SELECT :acc, u.contact_id, :gid, u.active, u.activated_at, u.deactivated_at,
               u.optout_reason, 'restore'
           FROM backup_undo_rows u JOIN backup_plan pl ON pl.line = u.line
           WHERE pl.kind IN {_TOUCHED} AND u.contact_id IS NOT NULL
           ON CONFLICT (contact_id, group_id) DO NOTHING""",  # noqa: S608  # nosec B608  # constants only
        **p,
    )


def _remove_later_members(p: dict[str, Any]) -> None:
    """Exact mode: members who joined after the backup leave the group."""
    # exact: who joined the group after the backup leaves it; nobody is erased - a
    # contact left in no group goes "to be deleted" (restorable until the purge)
    emit_contacts(
        events.CONTACT_DELETED,
        "SELECT contact_id FROM backup_plan WHERE kind = 'orphaned'",
        **p,
    )
    emit_contacts(
        events.CONTACT_UPDATED, "SELECT contact_id FROM backup_plan WHERE kind = 'removed'", **p
    )
    run_sql(
        """DELETE FROM subscriptions WHERE group_id = :gid AND contact_id IN (
               SELECT contact_id FROM backup_plan WHERE kind IN ('removed', 'orphaned'))""",
        **p,
    )
    run_sql(
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
        backup = live_backup(restore.account_id, restore.backup_id)
        if backup is None:
            raise RestoreRefused(_l("This backup has expired and is being deleted."))
        group = _target_group(backup, restore.created_by, None)
        db.session.flush()
        sql.lock_group(group.id)  # imports into the group wait while it is set back
        if import_running_into(group.id):
            raise RestoreRefused(
                _l("Another import into this group is running. Please wait until it has finished.")
            )
        preview = _plan_restore(backup, group, storage)
        _apply_restore(backup, group, restore.mode, preview)
        drop_scratch()
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
            account=account_of(backup.account_id),
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
