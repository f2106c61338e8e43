"""The undo of an import: the group put back as the import's backup shows it (or
emptied again, when the group was empty before the import), contacts the import changed
set back from their before images, in one transaction: all of it or none.

Kinds of an undo's plan: set_back (the backup's data differs, or the import changed the
contact), removed (members the backup does not hold), deleted (of those, the contacts
the import created that belong to no other group)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select

from portal import clock, events
from portal.backups.models import Backup, ImportUndo, UndoStatus
from portal.backups.read import account_of, live_backup, verify
from portal.backups.retention import RETENTION_DAYS
from portal.backups.scratch import (
    EXAMPLES,
    NO_ID,
    Preview,
    create_scratch,
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
    sql_clause,
    subscription_differs,
)
from portal.contacts.models import Group
from portal.core import audit, sql
from portal.core.errors import ServiceError
from portal.core.storage import BackupStorage, get_storage
from portal.extensions import db
from portal.imports.models import ImportJob, ImportStatus

if TYPE_CHECKING:
    from portal.accounts.models import User


class UndoRefused(ServiceError):
    """The import cannot be undone (the message says why)."""


def latest_undo(job: ImportJob) -> ImportUndo | None:
    return db.session.scalar(
        select(ImportUndo).where(ImportUndo.import_id == job.id).order_by(ImportUndo.id.desc())
    )


def undo_blocker(job: ImportJob) -> str | None:
    """Why the import cannot be undone now (a sentence for the user), or None."""
    if job.undone_at is not None:
        return _("This import has already been undone.")
    if job.status != ImportStatus.FINISHED:
        return _("Only a finished import can be undone.")
    if job.group_was_empty:
        if job.created_at + timedelta(days=RETENTION_DAYS) <= clock.now():
            return ngettext(
                "Imports can be undone for %(num)d day.",
                "Imports can be undone for %(num)d days.",
                RETENTION_DAYS,
            )
    elif live_backup(job.account_id, job.backup_id) is None:
        return _("There is no backup of the group from before this import (any more).")
    if job.group_id is None or db.session.get(Group, job.group_id) is None:
        return _(
            "The group of this import has been deleted. Restore one of its backups on the "
            "backups page instead."
        )
    undo = latest_undo(job)
    if undo is not None and undo.status in (UndoStatus.QUEUED, UndoStatus.RUNNING):
        return _("The import is being undone.")
    if import_running_into(job.group_id, except_id=job.id):
        return _("Another import into this group is running. Please wait until it has finished.")
    return None


def request_undo(job: ImportJob, *, actor: User | None, ip: str | None = None) -> ImportUndo:
    """Record the wish to undo (committed by the caller before the job is enqueued)."""
    reason = undo_blocker(job)
    if reason is not None:
        raise UndoRefused(reason)
    undo = ImportUndo(
        account_id=job.account_id,
        import_id=job.id,
        backup_id=job.backup_id,
        created_by_id=getattr(actor, "id", None),
        status=UndoStatus.QUEUED.value,
    )
    db.session.add(undo)
    db.session.flush()
    return undo


def _apply_undo(job: ImportJob, backup: Backup | None, undo: ImportUndo, plan) -> None:
    """The set-based undo on the scratch tables (loaded and classified by
    plan_undo: the contacts matched, the counts taken), in the caller's
    transaction. Without a backup the group was empty before the import."""

    fragment = sql.fragments()
    p = {
        "acc": job.account_id,
        "gid": job.group_id,
        "bid": backup.id if backup is not None else -1,
        "now": clock.now(),
        "since": undo_since(job, backup),
        "finished": job.finished_at or clock.now(),
    }
    undo.restored = plan.count("set_back")  # only the contacts that change
    fill_search_names(
        "u.contact_id IN (SELECT contact_id FROM backup_plan WHERE kind = 'set_back')"
    )
    _set_back_master_data(fragment, p)
    _set_back_tags(p)
    _set_back_subscriptions(fragment, p)
    undo.removed, undo.deleted = _take_out_new_members(p)
    _tell_undo_listeners(p)
    _set_back_before_images(job, fragment)
    run_sql(
        """DELETE FROM tags WHERE account_id = :acc AND created_at >= :since
           AND created_at <= :finished
           AND NOT EXISTS (SELECT 1 FROM contact_tags ct WHERE ct.tag_id = tags.id)""",
        **p,
    )


def _set_back_master_data(fragment: dict[str, str], p: dict[str, Any]) -> None:
    """Names and custom fields as in the backup; "to be deleted" again where it was."""
    # names and custom fields exactly as in the backup
    run_sql(
        f"""UPDATE contacts SET first_name = u.first_name, last_name = u.last_name,
               search_name = u.search_name, search_name_rev = u.search_name_rev,
               fields = {fragment["json"].format("u.fields")}, updated_at = :now
           FROM backup_undo_rows u
           WHERE contacts.id = u.contact_id AND (contacts.first_name <> u.first_name
              OR contacts.last_name <> u.last_name OR {fragment["contact_fields_differ"]})""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    # contacts that were "to be deleted" then and that the import brought back
    run_sql(
        """UPDATE contacts SET status = 'deleted', deleted_at = p.deleted_at, updated_at = :now
           FROM backup_pending_deletions p
           WHERE p.backup_id = :bid AND contacts.id = p.contact_id
             AND contacts.account_id = :acc AND contacts.status <> 'deleted'""",
        **p,
    )


def _set_back_tags(p: dict[str, Any]) -> None:
    """The backup lines' contacts get exactly the backup's tags."""
    with_contact = "SELECT line, contact_id FROM backup_undo_rows WHERE contact_id IS NOT NULL"
    set_tags_exactly(with_contact, **p)


def _set_back_subscriptions(fragment: dict[str, str], p: dict[str, Any]) -> None:
    """The group's sign-up and sign-off data as in the backup (the consent rule applies)."""
    differ = fragment["differ"]
    # sign-up and sign-off data exactly as in the backup - except that nobody who
    # signed off or up *after* the import is switched back by its undo
    run_sql(
        f"""UPDATE subscriptions SET active = u.active, activated_at = u.activated_at,
               deactivated_at = u.deactivated_at, optout_reason = u.optout_reason
           FROM backup_undo_rows u
           WHERE subscriptions.group_id = :gid AND subscriptions.contact_id = u.contact_id
             AND (subscriptions.active <> u.active
                  OR subscriptions.activated_at {differ} u.activated_at
                  OR subscriptions.deactivated_at {differ} u.deactivated_at
                  OR subscriptions.optout_reason {differ} u.optout_reason)
             AND (subscriptions.active = u.active
                  OR (u.active AND (subscriptions.deactivated_at IS NULL
                                    OR subscriptions.deactivated_at <= :finished))
                  OR (NOT u.active AND (subscriptions.activated_at IS NULL
                                        OR subscriptions.activated_at <= :finished)))""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    run_sql(
        """INSERT INTO subscriptions (account_id, contact_id, group_id, active, activated_at,
               deactivated_at, optout_reason, source)
           SELECT :acc, u.contact_id, :gid, u.active, u.activated_at, u.deactivated_at,
               u.optout_reason, 'restore'
           FROM backup_undo_rows u WHERE u.contact_id IS NOT NULL
           ON CONFLICT (contact_id, group_id) DO NOTHING""",
        **p,
    )


def _take_out_new_members(p: dict[str, Any]) -> tuple[int, int]:
    """(removed, deleted): members the backup does not hold leave the group; those the
    import created and no other group holds are deleted."""
    # contacts the group holds now and the backup does not: out of the group, and
    # deleted when they did not exist before the backup and are in no other group
    removed = run_sql(
        """INSERT INTO backup_undo_removed (contact_id)
           SELECT s.contact_id FROM subscriptions s
           WHERE s.group_id = :gid AND NOT EXISTS (
               SELECT 1 FROM backup_undo_rows u WHERE u.contact_id = s.contact_id)""",
        **p,
    )
    run_sql(
        """DELETE FROM subscriptions WHERE group_id = :gid
           AND contact_id IN (SELECT contact_id FROM backup_undo_removed)""",
        **p,
    )
    new_and_alone = """FROM contacts WHERE account_id = :acc
           AND id IN (SELECT contact_id FROM backup_undo_removed)
           AND created_at >= :since
           AND NOT EXISTS (SELECT 1 FROM subscriptions s WHERE s.contact_id = contacts.id)"""
    emit_contacts(events.CONTACT_PURGED, f"SELECT id AS contact_id {new_and_alone}", **p)
    deleted = run_sql(f"DELETE {new_and_alone}", **p)  # nosec B608  # constants only
    return removed, deleted


def _set_back_before_images(job: ImportJob, fragment: dict[str, str]) -> None:
    """Every contact the import changed, field by field as it was: names, custom fields,
    status, updated_at and tags — also those in other groups only, which the group's
    backup does not hold (models.ImportBeforeImage). Contacts forgotten since have no
    image any more (it goes with the contact)."""
    p = {"iid": job.id}
    run_sql(
        f"""UPDATE contacts SET first_name = b.first_name, last_name = b.last_name,
               search_name = b.search_name, search_name_rev = b.search_name_rev,
               fields = {fragment["json"].format("b.fields")}, status = b.status,
               deleted_at = b.deleted_at, updated_at = b.updated_at
           FROM import_before_images b
           WHERE b.import_id = :iid AND contacts.id = b.contact_id""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    tags, tag_id = fragment["image_tags"], fragment["tag_id"]
    run_sql(
        f"""DELETE FROM contact_tags
           WHERE contact_id IN (SELECT contact_id FROM import_before_images WHERE import_id = :iid)
             AND NOT EXISTS (SELECT 1 FROM import_before_images b {tags}
                             WHERE b.import_id = :iid AND b.contact_id = contact_tags.contact_id
                               AND {tag_id} = contact_tags.tag_id)""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    run_sql(
        f"""INSERT INTO contact_tags (contact_id, tag_id)
           SELECT b.contact_id, tg.id FROM import_before_images b {tags}
           JOIN tags tg ON tg.id = {tag_id}
           WHERE b.import_id = :iid
           ON CONFLICT (contact_id, tag_id) DO NOTHING""",  # noqa: S608  # nosec B608  # dialect constants only
        **p,
    )
    run_sql("DELETE FROM import_before_images WHERE import_id = :iid", **p)


def _tell_undo_listeners(p: dict[str, Any]) -> None:
    """After an undo: the contacts set back to the backup (or back to "to be deleted"),
    and those only taken out of the group, as one event each; the body a provider gets
    carries their current groups and tags."""
    emit_contacts(
        events.CONTACT_DELETED,
        """SELECT p.contact_id FROM backup_pending_deletions p
           JOIN contacts c ON c.id = p.contact_id AND c.account_id = :acc
           WHERE p.backup_id = :bid AND c.status = 'deleted'""",
        **p,
    )
    emit_contacts(
        events.CONTACT_UPDATED,
        """SELECT c.id AS contact_id FROM contacts c
           WHERE c.account_id = :acc AND c.status <> 'deleted'
             AND (c.id IN (SELECT contact_id FROM backup_undo_rows)
                  OR c.id IN (SELECT contact_id FROM backup_undo_removed))""",
        **p,
    )


def run_undo(undo: ImportUndo, storage: BackupStorage | None = None) -> None:
    """Put the group back as the import's backup shows it, in one transaction: either
    the whole undo happens or none of it. Called by the RQ task and by tests."""
    storage = storage or get_storage()
    if undo.status == UndoStatus.FINISHED:
        return
    job = db.session.get(ImportJob, undo.import_id)
    undo.status = UndoStatus.RUNNING.value
    db.session.commit()
    try:
        backup = _lock_and_check(job)
        plan = plan_undo(job, backup, storage)
        _apply_undo(job, backup, undo, plan)
        drop_scratch()
        _record_undone(undo, backup)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        undo = db.session.get(ImportUndo, undo.id)
        undo.status = UndoStatus.FAILED.value
        undo.error = str(exc.args[0]) if isinstance(exc, ServiceError) else ""
        undo.finished_at = clock.now()
        db.session.commit()
        if not isinstance(exc, ServiceError):
            raise


def _lock_and_check(job: ImportJob) -> Backup | None:
    """The group locked (PostgreSQL: imports into it wait for the undo) and the undo
    still possible now: the backup (None when the group was empty before the import),
    else UndoRefused with the reason."""
    sql.lock_group(job.group_id)  # imports into this group wait for the undo
    if job.undone_at is not None:
        raise UndoRefused(_l("This import has already been undone."))
    backup = live_backup(job.account_id, job.backup_id)
    if (
        (backup is None and not job.group_was_empty)
        or job.group_id is None
        or db.session.get(Group, job.group_id) is None
    ):
        raise UndoRefused(
            _l("The backup or the group of this import no longer exists; nothing was changed.")
        )
    if import_running_into(job.group_id, except_id=job.id):
        raise UndoRefused(
            _l("Another import into this group is running. Please wait until it has finished.")
        )
    return backup


def _record_undone(undo: ImportUndo, backup: Backup | None) -> None:
    """The import marked undone, the undo finished, and the audit event."""
    db.session.expire_all()
    job = db.session.get(ImportJob, undo.import_id)
    now = clock.now()
    job.undone_at = now
    undo.status = UndoStatus.FINISHED.value
    undo.finished_at = now
    audit.record(
        "import.undone",
        account=account_of(job.account_id),
        actor=undo.created_by,
        object_type="import",
        object_id=job.id,
        details={
            "group": job.group_name,
            "backup_id": backup.id if backup is not None else None,
            "restored": undo.restored,
            "removed": undo.removed,
            "deleted": undo.deleted,
        },
    )


def undo_message(undo: ImportUndo) -> str:
    if undo.status == UndoStatus.FAILED:
        return undo.error or _("The undo failed. Nothing was changed. Please try again.")
    return ""


UNDO_KINDS = ("set_back", "removed", "deleted")


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
        verify(backup, storage)
        load_scratch(backup, storage)
    else:
        create_scratch()
    fragment = sql.fragments()
    finished = job.finished_at or clock.now()
    p = {
        "acc": job.account_id,
        "gid": job.group_id,
        "bid": backup.id if backup is not None else NO_ID,
        "iid": job.id,
        "since": undo_since(job, backup),
        "finished": finished,
    }
    match_contacts(job.account_id)
    find_tag_differences()
    consent_allowed = """(s.active = u.active
            OR (u.active AND (s.deactivated_at IS NULL OR s.deactivated_at <= :finished))
            OR (NOT u.active AND (s.activated_at IS NULL OR s.activated_at <= :finished)))"""
    run_sql(
        f"""INSERT INTO backup_plan (contact_id, kind)
           SELECT DISTINCT x.contact_id, 'set_back' FROM (
             SELECT u.contact_id FROM backup_undo_rows u
             JOIN contacts ON contacts.id = u.contact_id
             LEFT JOIN subscriptions s ON s.group_id = :gid AND s.contact_id = u.contact_id
             WHERE s.id IS NULL OR {master_data_differs(fragment)}
                OR ({subscription_differs(fragment)} AND {consent_allowed})
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
    run_sql(
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
    counts = plan_counts()
    counts["removed"] = counts.get("removed", 0) + counts.get("deleted", 0)
    return Preview(counts=counts, examples=_undo_examples(counts))


def _undo_examples(counts: dict[str, int]) -> dict[str, list[str]]:
    examples = plan_examples(("set_back", "deleted"), counts)
    removed = list(
        db.session.scalars(
            sql_clause(
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
    backup = live_backup(job.account_id, job.backup_id)
    try:
        return plan_undo(job, backup, storage or get_storage())
    finally:
        drop_scratch()
        db.session.rollback()
