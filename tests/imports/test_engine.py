"""The import engine: modes, options, consent rules, skips and their reasons."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.contacts.models import Contact, Subscription
from portal.extensions import db
from portal.imports import staging
from portal.imports.mapping import PORTAL_HEADER
from portal.imports.models import ImportStatus
from portal.imports.queries import problems
from tests.imports.conftest import contact_state

HEADER = ["E-Mail", "Vorname", "Nachname", "Tags"]


def test_update_and_add_creates_contacts_with_tags_and_subscriptions(account, group, run_import):
    job = run_import(
        [
            HEADER,
            ["Jürgen.Größ@Example.de", "Jürgen", "Größ", "Kunde; VIP"],
            ["lukasz@example.pl", "Łukasz", "Węgrzyn", "Żółć"],
        ]
    )
    assert job.status == ImportStatus.FINISHED
    assert (job.created, job.updated, job.unchanged, job.invalid) == (2, 0, 0, 0)
    state = contact_state(account.id)
    assert state["jürgen.größ@example.de"]["first"] == "Jürgen"
    assert state["jürgen.größ@example.de"]["tags"] == ["Kunde", "VIP"]
    assert state["lukasz@example.pl"]["search"] == "lukasz wegrzyn"
    active, activated, _, _ = state["lukasz@example.pl"]["subs"][group.id]
    assert active is True and activated is not None


def test_second_import_updates_only_what_changed(account, run_import):
    run_import([HEADER, ["a@example.com", "Anna", "Alt", ""], ["b@example.com", "Ben", "B", ""]])
    job = run_import(
        [
            HEADER,
            ["a@example.com", "Anna", "Neu", ""],
            ["b@example.com", "Ben", "B", ""],
            ["c@example.com", "Cem", "C", ""],
        ]
    )
    assert (job.created, job.updated, job.unchanged) == (1, 1, 1)
    assert contact_state(account.id)["a@example.com"]["last"] == "Neu"


def test_empty_cells_never_erase_existing_values(account, run_import):
    run_import([HEADER, ["a@example.com", "Anna", "Schmidt", ""]])
    job = run_import([HEADER, ["a@example.com", "", "Schmitt", ""]])
    state = contact_state(account.id)["a@example.com"]
    assert (state["first"], state["last"]) == ("Anna", "Schmitt")
    assert state["search"] == "anna schmitt"
    assert job.updated == 1


def test_add_only_leaves_existing_contacts_alone(account, run_import):
    run_import([HEADER, ["a@example.com", "Anna", "Alt", ""]])
    job = run_import(
        [HEADER, ["a@example.com", "Anna", "Neu", "X"], ["n@example.com", "N", "N", ""]], mode="add"
    )
    assert (job.created, job.unchanged) == (1, 1)
    state = contact_state(account.id)["a@example.com"]
    assert state["last"] == "Alt" and state["tags"] == []


def test_update_only_adds_no_one_and_says_why(account, run_import):
    run_import([HEADER, ["a@example.com", "Anna", "Alt", ""]])
    job = run_import(
        [HEADER, ["a@example.com", "Anna", "Neu", ""], ["n@example.com", "N", "N", ""]],
        mode="update",
    )
    assert (job.created, job.updated, job.skipped) == (0, 1, 1)
    assert job.skipped_reasons == {"not_found": 1}
    assert set(contact_state(account.id)) == {"a@example.com"}
    [problem] = problems(job)
    assert (problem.line, problem.code, problem.cells[0]) == (3, "not_found", "n@example.com")


def test_invalid_rows_are_reported_with_line_number_and_original_cells(account, run_import):
    job = run_import(
        [
            HEADER,
            ["good@example.com", "G", "G", ""],
            ["not-an-email", "X", "Y", ""],
            ["", "Empty", "Mail", ""],
        ]
    )
    assert (job.created, job.invalid) == (1, 2)
    found = [(p.line, p.code, p.cells) for p in problems(job)]
    assert found == [
        (3, "email_invalid", ["not-an-email", "X", "Y", ""]),
        (4, "email_missing", ["", "Empty", "Mail", ""]),
    ]


def test_duplicates_inside_the_file_are_reported(account, run_import):
    job = run_import(
        [HEADER, ["a@example.com", "First", "One", ""], ["A@Example.com", "Second", "Two", ""]]
    )
    assert (job.created, job.skipped) == (1, 1)
    assert contact_state(account.id)["a@example.com"]["first"] == "First"
    [problem] = problems(job)
    assert problem.code == "duplicate" and int(problem.params["line"]) == 2


CONSENT_HEADER = list(PORTAL_HEADER)


def _sub(email):
    return db.session.scalar(db.select(Subscription).join(Contact).where(Contact.email == email))


def test_import_without_consent_data_never_reactivates(account, run_import):
    run_import(
        [
            CONSENT_HEADER,
            ["u@example.com", "U", "U", "", "no", "2024-01-01", "2024-02-01", "unsubscribed"],
        ],
        consent=True,
    )
    assert _sub("u@example.com").active is False
    job = run_import([HEADER, ["u@example.com", "U", "U", ""]])
    assert _sub("u@example.com").active is False
    assert job.reactivated == 0


def test_newer_sign_up_in_the_file_reactivates_only_with_consent_import(account, run_import):
    run_import(
        [
            CONSENT_HEADER,
            ["u@example.com", "U", "U", "", "no", "2024-01-01", "2024-02-01", "bounced"],
        ],
        consent=True,
    )
    sub = _sub("u@example.com")
    assert (sub.active, sub.optout_reason) == (False, "bounced")
    assert sub.deactivated_at == datetime(2024, 1, 31, 23, 0, tzinfo=UTC)
    older = run_import(
        [CONSENT_HEADER, ["u@example.com", "U", "U", "", "yes", "2024-01-15", "", ""]], consent=True
    )
    assert older.reactivated == 0 and _sub("u@example.com").active is False
    newer = run_import(
        [CONSENT_HEADER, ["u@example.com", "U", "U", "", "yes", "2024-03-01", "", ""]], consent=True
    )
    assert newer.reactivated == 1
    sub = _sub("u@example.com")
    assert (sub.active, sub.deactivated_at, sub.optout_reason) == (True, None, None)


def test_file_signs_off_without_any_option(account, run_import):
    run_import([CONSENT_HEADER, ["a@example.com", "A", "A", "", "yes", "2023-12-01", "", ""]])
    job = run_import(
        [
            CONSENT_HEADER,
            ["a@example.com", "A", "A", "", "", "2024-01-01", "2024-05-01", "complained"],
        ],
    )
    sub = _sub("a@example.com")
    assert (sub.active, sub.optout_reason) == (False, "complained")
    assert job.updated == 1


def test_contacts_pending_deletion_need_the_restore_option(account, run_import):
    run_import([HEADER, ["d@example.com", "D", "D", ""]])
    contact = db.session.scalar(db.select(Contact).where(Contact.email == "d@example.com"))
    contact.status, contact.deleted_at = "deleted", datetime.now(UTC)
    db.session.commit()
    job = run_import([HEADER, ["d@example.com", "D", "New", ""]])
    assert job.skipped_reasons == {"deleted": 1}
    assert contact_state(account.id)["d@example.com"]["status"] == "deleted"
    job = run_import([HEADER, ["d@example.com", "D", "New", ""]], restore=True)
    assert job.restored == 1
    state = contact_state(account.id)["d@example.com"]
    assert (state["status"], state["last"]) == ("active", "New")


def test_forgotten_addresses_are_skipped(account, run_import):
    from portal.core.privacy import Suppression, email_hash

    db.session.add(Suppression(account_id=account.id, email_hash=email_hash("gone@example.com")))
    db.session.commit()
    job = run_import([HEADER, ["Gone@Example.com", "G", "G", ""], ["ok@example.com", "O", "K", ""]])
    assert (job.created, job.skipped_reasons) == (1, {"forgotten": 1})
    assert "gone@example.com" not in contact_state(account.id)
    [problem] = problems(job)
    assert problem.code == "forgotten"


def test_dry_run_predicts_the_real_run_and_writes_nothing(account, run_import):
    run_import([HEADER, ["a@example.com", "Anna", "Alt", ""], ["b@example.com", "B", "B", ""]])
    rows = [
        HEADER,
        ["a@example.com", "Anna", "Neu", ""],
        ["b@example.com", "B", "B", ""],
        ["c@example.com", "C", "C", ""],
        ["bad", "x", "y", ""],
    ]
    before = contact_state(account.id)
    job = run_import(rows, dry_run=True)
    assert job.status == ImportStatus.READY
    assert job.dry_run == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "reactivated": 0,
        "restored": 0,
        "skipped": 0,
        "skipped_reasons": {},
        "invalid": 1,
        "consent": {"new_on": 1},
        "consent_examples": {},
    }
    assert contact_state(account.id) == before
    from portal.imports import service

    service.run(job)
    assert (job.created, job.updated, job.unchanged, job.invalid) == (1, 1, 1, 1)


def test_custom_fields_are_validated_and_merged(account, run_import):
    from portal.contacts.models import CustomField

    db.session.add_all(
        [
            CustomField(account_id=account.id, key="city", label="Stadt", type="text"),
            CustomField(account_id=account.id, key="points", label="Punkte", type="number"),
        ]
    )
    db.session.commit()
    run_import(
        [
            ["email", "Stadt", "Punkte"],
            ["a@example.com", "Köln", "12"],
            ["b@example.com", "Bonn", "zwölf"],
        ]
    )
    state = contact_state(account.id)
    assert state["a@example.com"]["fields"] == {"city": "Köln", "points": 12}
    # one unreadable optional cell costs the person nothing but that value
    assert state["b@example.com"]["fields"] == {"city": "Bonn"}
    job = run_import([["email", "Punkte"], ["a@example.com", "13,5"]])
    assert contact_state(account.id)["a@example.com"]["fields"] == {"city": "Köln", "points": 13.5}
    assert job.updated == 1


def test_infinite_or_not_a_number_is_no_number(account, run_import):
    """float() reads "inf" and "NaN", but JSON has no such numbers: the whole import
    used to fail at the merge; now those cells are left empty with a warning, like any
    other bad number, and the people are imported."""
    from portal.contacts.models import CustomField

    db.session.add(CustomField(account_id=account.id, key="points", label="Punkte", type="number"))
    db.session.commit()
    job = run_import(
        [
            ["email", "Punkte"],
            ["a@example.com", "inf"],
            ["b@example.com", "NaN"],
            ["c@example.com", "-Infinity"],
            ["d@example.com", "1e3"],
        ]
    )
    assert job.status == ImportStatus.FINISHED
    assert (job.created, job.invalid, job.warnings) == (4, 0, 3)
    state = contact_state(account.id)
    assert state["d@example.com"]["fields"] == {"points": 1000}
    assert state["a@example.com"]["fields"] == {}
    assert [(p.line, p.kind, p.code, p.params["column"]) for p in problems(job)] == [
        (2, "warning", "bad_number", "Punkte"),
        (3, "warning", "bad_number", "Punkte"),
        (4, "warning", "bad_number", "Punkte"),
    ]


def test_odd_characters_arrive_exactly(account, run_import):
    """Backslashes, tabs, line breaks and quotes in cells survive the bulk path (COPY)."""
    name = 'O\\Brien\t"Jr."\nline two'
    run_import([HEADER, ["odd@example.com", name, "Żółć \\N", "a\\b"]])
    state = contact_state(account.id)["odd@example.com"]
    assert (state["first"], state["last"], state["tags"]) == (name, "Żółć \\N", ["a\\b"])


def test_the_last_mapping_is_suggested_again(account, group, tmp_path):
    from portal.imports import service
    from tests.imports.conftest import write_csv

    first = service.create_import(
        account,
        actor=None,
        group=group,
        source_path=write_csv(tmp_path / "a.csv", [["Kontakt", "Rufname"], ["a@x.de", "A"]]),
        filename="a.csv",
        source="ui",
    )
    assert first.mapping == ["", ""]
    service.configure(
        first,
        mapping=["email", "first_name"],
        mode="update_add",
        import_consent=False,
        restore_deleted=False,
    )
    db.session.commit()
    second = service.create_import(
        account,
        actor=None,
        group=group,
        source_path=write_csv(tmp_path / "b.csv", [["Rufname", "Kontakt"], ["B", "b@x.de"]]),
        filename="b.csv",
        source="ui",
    )
    assert second.mapping == ["first_name", "email"]


def test_every_line_of_a_file_with_uneven_batches_arrives_once(
    app, account, run_import, monkeypatch
):
    """Batches of 1,000 lines and statements of 300 (SQLite's multi-row INSERT) do not
    divide 2,345 lines: the last, short ones arrive too, each line with its own values,
    and the duplicate in the last batch is still found."""
    monkeypatch.setattr(staging, "SQLITE_ROWS_PER_STATEMENT", 300)
    before = app.config["IMPORT_BATCH_ROWS"]
    app.config["IMPORT_BATCH_ROWS"] = 1_000
    try:
        rows = [HEADER] + [
            [f"k{i}@example.de", f"Zoë{i}", "Größ", f"T{i % 3}"] for i in range(2_345)
        ]
        job = run_import(rows + [["K7@example.de", "Zweimal", "", ""]])
    finally:
        app.config["IMPORT_BATCH_ROWS"] = before
    assert (job.created, job.skipped, job.skipped_reasons) == (2_345, 1, {"duplicate": 1})
    state = contact_state(account.id)
    assert len(state) == 2_345
    assert state["k2344@example.de"]["first"] == "Zoë2344"
    assert state["k1000@example.de"]["tags"] == ["T1"]
    assert state["k7@example.de"]["first"] == "Zoë7"
