"""`flask portal move-files --to postgresql|folder` moves the files of EVERY area —
backups, uploaded lists, exports, the outbox — verified by sha256 before a source goes,
resumable after an interruption, and a damaged source is refused and left in place
(tests/backups/test_move_files.py has the backups' own cases)."""

from __future__ import annotations

import pytest

from portal.backups.models import Backup
from portal.backups.read import verify
from portal.backups.snapshot import snapshot
from portal.core import storage
from portal.core.storage import DatabaseStorage, LocalStorage
from portal.extensions import db
from portal.imports import files as upload_files
from portal.imports import service as imports
from portal.imports.models import ImportJob
from portal.integrations import export
from portal.integrations.models import ExportRun
from portal.mail import outbox_messages, send_mail
from tests.backups.conftest import build_contacts
from tests.backups.stores import damage, everything
from tests.imports.conftest import write_csv

AREAS = ("backups", "uploads", "exports", "outbox")


@pytest.fixture
def folders(app, tmp_path, monkeypatch):
    """A one-machine portal on the folder store, with folders of this test's own."""
    instance = tmp_path / "instance"
    instance.mkdir()
    for key, value in {
        "INSTANCE_PATH": instance,
        "BACKUP_DIR": tmp_path / "backups",
        "OUTBOX_DIR": tmp_path / "outbox",
        "FILE_STORE": "folder",
    }.items():
        monkeypatch.setitem(app.config, key, str(value))


def _stores(area):
    return storage.storage_named("folder", area), storage.storage_named("postgresql", area)


@pytest.fixture
def made(account, group, folders, tmp_path):
    """One file in every area, as a one-machine portal made them: a backup, two uploaded
    lists (one stored before checksums were kept), an export and a mail."""
    build_contacts(account, group, 30)
    backup = snapshot(group, reason="manual")
    lists = []
    for name in ("a.csv", "old.csv"):
        path = write_csv(tmp_path / name, [["email"], [f"{name}@example.com"]])
        lists.append(
            imports.create_import(
                account, actor=None, group=group, source_path=path, filename=name, source="ui"
            )
        )
    lists[1].file_sha256 = ""  # an upload of before this change: no checksum kept
    run = export.start(account, fmt="csv", group=None, actor=None)
    db.session.commit()
    export.run(run)
    send_mail("cleo@example.com", "Hello", "password_reset", link="x", user=_User())
    db.session.commit()
    return {
        "backups": [backup.storage_key],
        "uploads": [job.stored_path for job in lists],
        "exports": [run.path],
        "outbox": [e.key for e in _stores("outbox")[0].entries()],
    }


class _User:
    display_name = "Cleo"


def _move(app, to, *more):
    return app.test_cli_runner().invoke(args=["portal", "move-files", "--to", to, *more])


def _readable_everywhere(app, made):
    """What the portal reads of each area, through the configured store, verified."""
    for backup in db.session.scalars(db.select(Backup)):
        verify(backup)
    for job in db.session.scalars(db.select(ImportJob)):
        with upload_files.upload_copy(job) as path:
            assert path.read_bytes().startswith(b"email")
    run = db.session.scalar(db.select(ExportRun))
    assert export.downloadable(run)
    with export.export_copy(run) as path:
        assert path.stat().st_size == run.size
    assert [m["To"] for m in outbox_messages()] == ["cleo@example.com"]


def test_every_area_moves_to_the_database_and_back_verified(app, made):
    result = _move(app, "postgresql")
    assert result.exit_code == 0, result.output
    for noun, n in (("backup", 1), ("upload", 2), ("export", 1), ("mail", 1)):
        assert f"Moved {n} {noun} file(s) from the folder store to the postgresql store" in (
            result.output
        )
    for area in AREAS:
        folder, database = _stores(area)
        assert everything(folder) == [], area
        assert sorted(e.key for e in database.entries()) == sorted(made[area]), area
    app.config["FILE_STORE"] = "postgresql"
    _readable_everywhere(app, made)

    again = _move(app, "postgresql")
    assert again.exit_code == 0 and "Moved 1 export file(s)" not in again.output
    assert again.output.count("Moved 0 ") == 4

    back = _move(app, "folder")
    assert back.exit_code == 0, back.output
    assert "Moved 2 upload file(s) from the postgresql store to the folder store" in back.output
    for area in AREAS:
        folder, database = _stores(area)
        assert list(database.entries()) == [], area
        assert sorted(e.key for e in folder.entries()) == sorted(made[area]), area
    app.config["FILE_STORE"] = "folder"
    _readable_everywhere(app, made)


def test_a_move_killed_halfway_loses_nothing_and_a_second_run_finishes_it(app, made, monkeypatch):
    """The third copy dies (a killed process: the database rolls the copy back), and a
    copy that was verified is killed before its source is deleted: the first run stops,
    every file is still in one store or the other and readable; the second run moves
    the rest and removes the sources of what was already copied."""
    real_write, real_delete = DatabaseStorage.write_stream, LocalStorage.delete
    calls = {"write": 0, "delete": 0}

    def dying_write(self, key, chunks):
        calls["write"] += 1
        if calls["write"] == 3:
            list(chunks)[:1]  # part of the file was read when the process died
            raise KeyboardInterrupt
        return real_write(self, key, chunks)

    def dying_delete(self, key):
        calls["delete"] += 1
        if calls["delete"] == 2:
            raise KeyboardInterrupt  # the copy is verified; the source not yet deleted
        return real_delete(self, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseStorage, "write_stream", dying_write)
        patch.setattr(LocalStorage, "delete", dying_delete)
        first = _move(app, "postgresql")
    assert first.exit_code != 0
    for area in AREAS:
        folder, database = _stores(area)
        present = {e.key for e in folder.entries()} | {e.key for e in database.entries()}
        assert present == set(made[area]), area
    assert any(list(_stores(a)[1].entries()) for a in AREAS)  # something was moved

    second = _move(app, "postgresql")
    assert second.exit_code == 0, second.output
    assert "1 already there" in second.output  # the verified copy whose source stayed
    for area in AREAS:
        folder, database = _stores(area)
        assert everything(folder) == [], area
        assert sorted(e.key for e in database.entries()) == sorted(made[area]), area
    app.config["FILE_STORE"] = "postgresql"
    _readable_everywhere(app, made)


@pytest.mark.parametrize("area", ["uploads", "exports"])
def test_a_damaged_source_is_refused_and_stays_where_it_is(app, made, area):
    folder, database = _stores(area)
    key = made[area][0]
    damage(folder, key, at=3)

    result = _move(app, "postgresql")
    assert result.exit_code == 1
    noun = {"uploads": "upload", "exports": "export"}[area]
    line = next(x for x in result.output.splitlines() if f" {noun} file(s) from" in x)
    assert line.endswith("0 missing, 1 damaged (left in the folder store)."), line
    assert everything(folder) == [key] and not database.exists(key)
    assert _stores("backups")[1].exists(made["backups"][0])  # the other areas moved


def test_the_source_is_the_configured_store_unless_named(app, made):
    same = _move(app, "folder", "--from", "folder")
    assert same.exit_code != 0 and "name the same store" in same.output
    # FILE_STORE=folder and --to folder: the files are taken from the database store,
    # which holds none here
    nothing = _move(app, "folder")
    assert nothing.exit_code == 0 and nothing.output.count("Moved 0 ") == 4
    assert "from the postgresql store to the folder store" in nothing.output
    assert all(sorted(e.key for e in _stores(a)[0].entries()) == sorted(made[a]) for a in AREAS)
