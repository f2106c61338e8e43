"""`flask portal move-files --to postgresql|folder`: existing backup files move between
the folder and the database store, each copy verified by its sha256 before the original
goes; a second run continues where one stopped; damaged or missing files are reported
and left where they are."""

from __future__ import annotations

import pytest

from portal.backups.read import download_stream, verify
from portal.backups.snapshot import snapshot
from portal.core.storage import DatabaseStorage, LocalStorage
from portal.extensions import db
from tests.backups.conftest import build_contacts
from tests.backups.stores import damage, everything, lose


@pytest.fixture
def stores(app, ctx, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setitem(app.config, "FILE_STORE", "folder")
    return LocalStorage(tmp_path / "backups"), DatabaseStorage(db.engine)


@pytest.fixture
def made(account, group, stores):
    """Three backups on the folder store, as a one-machine portal made them."""
    folder, _ = stores
    build_contacts(account, group, 40)
    backups = [snapshot(group, reason="manual", storage=folder) for _ in range(3)]
    db.session.commit()
    return backups


def _move(app, to):
    return app.test_cli_runner().invoke(args=["portal", "move-files", "--to", to])


def test_files_move_to_the_database_and_back_verified(app, stores, made):
    folder, database = stores
    folder.write_stream(f"{made[0].account_id}/stray.csv.gz", [b"no row"])

    result = _move(app, "postgresql")
    assert result.exit_code == 0, result.output
    assert "Moved 3 backup file(s) from the folder store to the postgresql store" in result.output
    assert "0 already there, 0 missing, 0 damaged" in result.output
    assert "1 file(s) in the folder store belong to no backup" in result.output
    assert "Set FILE_STORE=postgresql" in result.output
    assert everything(folder) == [f"{made[0].account_id}/stray.csv.gz"]
    app.config["FILE_STORE"] = "postgresql"
    for backup in made:
        verify(backup)  # read from the database now
        assert len(b"".join(download_stream(backup)).splitlines()) == 41

    again = _move(app, "postgresql")
    assert again.exit_code == 0 and "Moved 0 backup file(s)" in again.output
    assert "3 already there" in again.output and "Set FILE_STORE" not in again.output

    back = _move(app, "folder")
    assert back.exit_code == 0 and "Moved 3 backup file(s)" in back.output
    assert everything(database) == []
    for backup in made:
        verify(backup, folder)


def test_an_interrupted_move_continues_and_deletes_no_unverified_file(app, stores, made):
    folder, database = stores
    first, second, third = made
    # a run before copied the first file and stopped before deleting the original, and
    # left a damaged copy of the second
    with folder.open(first.storage_key) as fh:
        database.write_stream(first.storage_key, [fh.read()])
    with folder.open(second.storage_key) as fh:
        database.write_stream(second.storage_key, [fh.read()[:-5]])

    result = _move(app, "postgresql")
    assert result.exit_code == 0, result.output
    assert "Moved 2 backup file(s)" in result.output and "1 already there" in result.output
    assert everything(folder) == []
    for backup in made:
        verify(backup, database)
    assert third.storage_key in {e.key for e in database.entries()}


def test_damaged_and_missing_files_are_reported_and_left_in_place(app, stores, made):
    folder, database = stores
    damage(folder, made[0].storage_key)
    lose(folder, made[1].storage_key)

    result = _move(app, "postgresql")
    assert result.exit_code == 1
    assert "Moved 1 backup file(s)" in result.output
    assert "1 missing, 1 damaged (left in the folder store)" in result.output
    assert everything(folder) == [made[0].storage_key]  # the damaged one stays
    assert not database.exists(made[0].storage_key) and database.exists(made[2].storage_key)
