"""Phase 2 of an import: classify the staged rows and merge them, set-based.

Every staged row gets one outcome: created, updated, unchanged, reactivated,
restored, or skip_<reason>. The same statements serve the dry run (which rolls
back) and the real run (which commits chunk by chunk with its counters and the
checkpoint `merged_line`, so a killed worker resumes at the next chunk).

The consent rule (DESIGN.md): nobody ends up more subscribed than both the file and
the portal allow. What restricts always applies — a row that says signed off creates
the subscription signed off and signs an active one off, unless the portal holds a
sign-up newer than the file's sign-off ("kept_newer"). What re-activates someone who
signed off here needs the explicit option (`import_consent`) and a sign-up date in the
file newer than the sign-off. Every line's consent effect is classified once, with its
outcome (`CONSENT_CASE`), so the check step can say what will happen before it
happens. Forgotten addresses are skipped, always."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, column, text

from portal import clock, events
from portal.contacts.models import fold
from portal.core import sql
from portal.extensions import db
from portal.imports.consent import (
    EXAMPLES_KEPT,
    LISTED_CONSENT,
    REACTIVATABLE,
    SIGN_OFF,
    SIGNUP_MOVED,
    consent_case,
)
from portal.imports.lease import Lease
from portal.imports.models import ImportJob, ImportMode
from portal.imports.planner import PlannerStatistics, take_turn_in_account
from portal.imports.reasons import SKIP_CODES

CHUNK_ROWS = 50_000
WRITE_OUTCOMES = ("created", "updated", "restored", "reactivated")


class Merger:
    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.dialect = sql.dialect_name()
        self.sql = sql.fragments()
        self.strategy = sql.strategy()
        self.mode = job.mode
        self.has_group = job.group_id is not None
        self.dropped_warnings = 0  # warnings of forgotten rows removed by write()
        self.now = sql.utc_param(clock.now(), self.dialect)

    # -- helpers ---------------------------------------------------------------

    def _sequence(self) -> str:
        if not hasattr(self, "_sequence_name"):
            self._sequence_name = db.session.scalar(
                text("SELECT pg_get_serial_sequence('contacts', 'id')")
            )
        return self._sequence_name

    def _params(self, lo: int = 0, hi: int = 0, **extra: Any) -> dict[str, Any]:
        return {
            "id": self.job.id,
            "acc": self.job.account_id,
            "gid": self.job.group_id,
            "lo": lo,
            "hi": hi,
            "now": self.now,
            "mode": self.mode,
            "consent": self.job.import_consent,
            "restore": self.job.restore_deleted,
            "source": self.job.source,
            **extra,
        }

    def _run(self, statement: str, params: dict[str, Any]) -> int:
        return db.session.execute(text(statement), params).rowcount or 0

    # -- per chunk -----------------------------------------------------------------

    def classify(self, lo: int, hi: int, *, draw_ids: bool = True) -> None:
        """Give every staged line of lo..hi its outcome, in one pass over staging, into
        the temporary table `import_chunk` that the writing statements read.

        A temporary table because nothing of it has to outlive the chunk's transaction:
        it writes no WAL and no index, and staging itself is never updated (the outcome
        of a committed chunk lives on in the counters and the skipped-rows report).
        Order of the outcomes: forgotten, duplicate of an earlier line, not yet a
        contact (created, or skipped in "update only"), then for known contacts
        deleted / restored / reactivated / updated / unchanged. On PostgreSQL new
        contacts get their ids from the sequence here (`draw_ids`), so that every later
        statement joins by primary key."""
        classified = self._classified_select()
        new_id = "x.found_id"
        if self.strategy.ids_from_sequence and draw_ids:
            new_id = (
                f"CASE WHEN x.outcome = 'created' THEN nextval('{self._sequence()}') "
                "ELSE x.found_id END"
            )
        consent = (
            consent_case(s="x.", sub="x.sub_", found="x.found_id", in_group="x.in_group")
            if self.has_group
            else "NULL"
        )
        self.drop_chunk()
        # OFFSET 0 keeps PostgreSQL from copying the outcome expression into the CASE
        # that draws the ids (it would evaluate the look-ups twice)
        self._run(
            f"""CREATE TEMPORARY TABLE import_chunk {self.sql["on_commit_drop"]} AS
                SELECT x.*, {new_id} AS contact_id, {consent} AS consent
                FROM ({classified} {self.sql["offset_0"]}) x""",  # nosec B608  # constants and dialect fragments only
            self._params(lo, hi),
        )
        if self.strategy.analyze:
            # Without statistics PostgreSQL guesses a handful of rows for any filter on
            # the chunk and may scan it once per subscription of the group (95 s for one
            # statement at 50,000 rows); ANALYZE of a temporary table is a few ms.
            db.session.execute(text("ANALYZE import_chunk (outcome, contact_id, consent)"))

    def _classified_select(self) -> str:
        """The SELECT of classify: every staged line of :lo..:hi with the contact and
        the subscription it matches and its outcome."""
        in_group = "sub.id IS NOT NULL" if self.has_group else "false"
        sub_columns = (
            "sub.id AS sub_id, sub.active AS sub_active, sub.activated_at AS sub_activated_at, "
            "sub.deactivated_at AS sub_deactivated_at"
            if self.has_group
            else "NULL AS sub_id, NULL AS sub_active, NULL AS sub_activated_at, "
            "NULL AS sub_deactivated_at"
        )
        join_sub = (
            self.sql["probe"].format(
                table="subscriptions",
                alias="sub",
                on="sub.contact_id = c.id AND sub.group_id = :gid",
            )
            if self.has_group
            else ""
        )
        join_contact = self.sql["probe"].format(
            table="contacts", alias="c", on="c.account_id = :acc AND c.email = s.email"
        )
        classified = f"""
            SELECT s.line, s.email, s.first_name, s.last_name, s.search_name,
              s.search_name_rev, s.fields, s.tags, s.signup_at, s.signoff_at, s.active,
              s.optout_reason, c.id AS found_id, {in_group} AS in_group, {sub_columns}, CASE
                WHEN s.email_hash IN (SELECT email_hash FROM suppressions
                                      WHERE account_id = :acc) THEN 'skip_forgotten'
                WHEN EXISTS (SELECT 1 FROM import_rows earlier {self.sql["by_email"]}
                             WHERE earlier.import_id = :id AND earlier.email = s.email
                               AND earlier.line < s.line) THEN 'skip_duplicate'
                WHEN c.id IS NULL AND :mode = 'update' THEN 'skip_not_found'
                WHEN c.id IS NULL THEN 'created'
                ELSE {self._known_outcome()} END AS outcome
            FROM import_rows s {join_contact} {join_sub}
            WHERE s.import_id = :id AND s.line BETWEEN :lo AND :hi"""  # nosec B608  # constants and dialect fragments only
        return classified

    def _known_outcome(self) -> str:
        """The outcome of a staged line `s` whose address is a contact `c` (with its
        subscription `sub` to the import's group, if any). A line that only signs the
        contact off counts as updated, in every mode: what restricts always applies."""
        consent_changes = ""
        reactivation = "false"
        if self.has_group:
            on = {"s": "s.", "sub": "sub."}
            consent_changes = f"""
              OR (sub.id IS NULL AND :mode <> 'update')
              OR (sub.id IS NOT NULL AND {SIGN_OFF.format(**on)})
              OR (sub.id IS NOT NULL AND {SIGNUP_MOVED.format(**on)})"""
            reactivation = f":consent AND sub.id IS NOT NULL AND {REACTIVATABLE.format(**on)}"
        fields_differ = self.sql["fields_differ"].format(base="c.fields", patch="s.fields")
        return f"""CASE
                WHEN c.status = 'deleted' AND NOT :restore THEN 'skip_deleted'
                WHEN c.status = 'deleted' THEN 'restored'
                WHEN {reactivation} THEN 'reactivated'
                WHEN (:mode <> 'add' AND (
                       (s.first_name IS NOT NULL AND s.first_name <> c.first_name)
                    OR (s.last_name IS NOT NULL AND s.last_name <> c.last_name)
                    OR (s.fields IS NOT NULL AND {fields_differ})
                    OR (s.tags IS NOT NULL AND EXISTS (
                         SELECT 1 FROM {self.sql["tag_names"].format("s.tags")}
                         LEFT JOIN tags tg ON tg.account_id = :acc AND tg.name = t.value
                         WHERE tg.id IS NULL OR NOT EXISTS (SELECT 1 FROM contact_tags ct
                             WHERE ct.contact_id = c.id AND ct.tag_id = tg.id)))
                  )) {consent_changes}
                  THEN 'updated'
                ELSE 'unchanged' END"""  # nosec B608  # constants and dialect fragments only

    def tell_listeners(self) -> None:
        """Tell a linked provider (portal.events) which contacts this chunk created,
        changed or brought back — set-based from the chunk table, in the chunk's own
        transaction, so an event exists exactly when the change does."""
        if not events.listened():
            return
        for kind, outcomes in (
            (events.CONTACT_CREATED, "('created')"),
            (events.CONTACT_UPDATED, "('updated', 'reactivated')"),
            (events.CONTACT_RESTORED, "('restored')"),
        ):
            ids = text(
                f"""SELECT contact_id FROM import_chunk
                    WHERE outcome IN {outcomes} AND contact_id IS NOT NULL"""  # nosec B608  # constants only
            ).columns(column("contact_id", Integer))
            events.emit_select(self.job.account_id, kind, ids, source="import")

    def drop_chunk(self) -> None:
        """PostgreSQL drops the chunk table at commit, but a dry run classifies every
        chunk in one transaction, and SQLite keeps it until told."""
        db.session.execute(text("DROP TABLE IF EXISTS import_chunk"))

    def counts(self) -> dict[str, int]:
        """Outcomes of the classified chunk."""
        rows = db.session.execute(
            text("SELECT outcome, COUNT(*) FROM import_chunk GROUP BY outcome")
        )
        return {outcome: count for outcome, count in rows}

    def consent_counts(self) -> dict[str, int]:
        """Consent effects of the classified chunk, by effect and by "effect:reason"
        for those that sign someone off."""
        rows = db.session.execute(
            text("""SELECT consent, CASE WHEN active = false THEN optout_reason END, COUNT(*)
                    FROM import_chunk
                    WHERE consent IS NOT NULL AND outcome NOT LIKE 'skip!_%' ESCAPE '!'
                    GROUP BY 1, 2""")
        )
        counts: dict[str, int] = {}
        for consent, reason, count in rows:
            counts[consent] = counts.get(consent, 0) + count
            if reason and consent in ("new_off", "signed_off"):
                counts[f"{consent}:{reason}"] = count
        return counts

    def consent_examples(self, limit: int = EXAMPLES_KEPT) -> dict[str, list[str]]:
        """Addresses of the effects the check step lists by name."""
        examples: dict[str, list[str]] = {}
        for consent in LISTED_CONSENT:
            examples[consent] = list(
                db.session.scalars(
                    text("""SELECT email FROM import_chunk
                            WHERE consent = :consent AND outcome NOT LIKE 'skip!_%' ESCAPE '!'
                            ORDER BY line LIMIT :n"""),
                    {"consent": consent, "n": limit},
                )
            )
        return {k: v for k, v in examples.items() if v}

    def write(self, new_contacts: int) -> bool:
        """Write the classified chunk: contacts, subscriptions, tags, skipped rows.
        `new_contacts` is the chunk's count of 'created' lines; True when some of them
        were classified again (see _reclassify_taken), so the counts changed."""
        p = self._params()
        reclassified = self._insert_contacts(p, new_contacts)
        if self.job.backup_id is not None or self.job.group_was_empty:
            self._keep_before_images(p)
        self._update_contacts(p)
        if self.has_group:
            self._subscriptions(p)
        self._tags(p)
        self._fix_search_names(p)
        self._record_skips(p)
        return reclassified

    def _insert_contacts(self, p: dict, expected: int) -> bool:
        """New contacts. Their ids must be in the chunk table, so that the statements after this
        one join by primary key: on PostgreSQL the ids were drawn from the sequence when
        the rows were classified; on SQLite they are looked up after the insert.
        (A data-modifying CTE joined on email was tried first: with staging statistics
        from an earlier chunk PostgreSQL planned it as a nested loop, 350 s at 100k.)"""
        fields = self.sql["json"].format("COALESCE(fields, '{}')")
        with_id = self.strategy.ids_from_sequence
        inserted = self._run(
            f"""INSERT INTO contacts ({"id, " if with_id else ""}account_id, email, first_name,
                   last_name, fields, status, created_at, updated_at, search_name,
                   search_name_rev)
                SELECT {"contact_id, " if with_id else ""}:acc, email, COALESCE(first_name, ''),
                   COALESCE(last_name, ''), {fields}, 'active', :now, :now, search_name,
                   search_name_rev
                FROM import_chunk WHERE outcome = 'created'
                ON CONFLICT (account_id, email) DO NOTHING""",  # nosec B608  # constants and dialect fragments only
            p,
        )
        if with_id:
            if inserted == expected:
                return False
            self._reclassify_taken(p)
            return True
        # SQLite: the ids, by one unique-index look-up per row. No other import can have
        # created one of these addresses since the classification: the chunk's
        # transaction holds SQLite's only write lock from its first statement on (see
        # Lease.begin).
        self._run(
            """UPDATE import_chunk SET contact_id = (SELECT c.id FROM contacts c
                   WHERE c.account_id = :acc AND c.email = import_chunk.email)
               WHERE outcome = 'created'""",
            p,
        )
        return False

    def _reclassify_taken(self, p: dict) -> None:
        """PostgreSQL: another writer of the account (the API, the sign-up form, a
        restore — other imports wait for their turn, see planner.take_turn_in_account) created
        some of the chunk's new addresses first, between our classification and our
        insert, which `ON CONFLICT DO NOTHING` skipped. Those
        lines are classified again against the contact that now exists — as if this
        import had run after the other one: updated or unchanged, subscribed to this
        import's group, their tags linked — and counted that way, not as created."""
        sub = (
            "LEFT JOIN subscriptions sub ON sub.contact_id = c.id AND sub.group_id = :gid"
            if self.has_group
            else ""
        )
        in_group = "sub.id IS NOT NULL" if self.has_group else "false"
        consent = (
            "sub_id = sub.id, sub_active = sub.active, sub_activated_at = sub.activated_at, "
            "sub_deactivated_at = sub.deactivated_at, consent = "
            + consent_case(s="s.", sub="sub.", found="c.id", in_group="(sub.id IS NOT NULL)")
            if self.has_group
            else "consent = NULL"
        )
        self._run(
            f"""UPDATE import_chunk AS s
                SET contact_id = c.id, in_group = {in_group}, outcome = {self._known_outcome()},
                    {consent}
                FROM contacts c {sub}
                WHERE s.outcome = 'created' AND c.account_id = :acc AND c.email = s.email
                  AND c.id <> s.contact_id""",  # nosec B608  # constants and dialect fragments only
            p,
        )

    def _keep_before_images(self, p: dict) -> None:
        """The contacts this chunk is about to change, as they are: what the undo of an
        import with a backup sets back (see models.ImportBeforeImage)."""
        tag_ids = self.sql["tag_ids"]
        self._run(
            f"""INSERT INTO import_before_images (import_id, contact_id, first_name,
                   last_name, search_name, search_name_rev, fields, status, deleted_at,
                   updated_at, tag_ids)
                SELECT :id, c.id, c.first_name, c.last_name, c.search_name, c.search_name_rev,
                   c.fields, c.status, c.deleted_at, c.updated_at, {tag_ids}
                FROM import_chunk s JOIN contacts c ON c.id = s.contact_id
                WHERE s.outcome IN ('updated', 'restored', 'reactivated')
                ON CONFLICT (import_id, contact_id) DO NOTHING""",  # nosec B608  # constants and dialect fragments only
            p,
        )

    def _update_contacts(self, p: dict) -> None:
        if self.mode == ImportMode.ADD:
            self._run(
                """UPDATE contacts SET status = 'active', deleted_at = NULL, updated_at = :now
                   FROM import_chunk s
                   WHERE s.outcome = 'restored' AND contacts.id = s.contact_id""",
                p,
            )
            return
        merged = self.sql["merge_fields"].format(base="contacts.fields", patch="s.fields")
        self._run(
            f"""UPDATE contacts SET
                  first_name = COALESCE(s.first_name, contacts.first_name),
                  last_name = COALESCE(s.last_name, contacts.last_name),
                  fields = CASE WHEN s.fields IS NULL THEN contacts.fields ELSE {merged} END,
                  search_name = CASE WHEN s.first_name IS NOT NULL AND s.last_name IS NOT NULL
                                THEN s.search_name ELSE contacts.search_name END,
                  search_name_rev = CASE WHEN s.first_name IS NOT NULL AND s.last_name IS NOT NULL
                                THEN s.search_name_rev ELSE contacts.search_name_rev END,
                  status = 'active',
                  deleted_at = CASE WHEN s.outcome = 'restored' THEN NULL
                               ELSE contacts.deleted_at END,
                  updated_at = :now
                FROM import_chunk s
                WHERE s.outcome IN ('updated', 'restored', 'reactivated')
                  AND contacts.id = s.contact_id""",  # nosec B608  # constants and dialect fragments only
            p,
        )

    def _subscriptions(self, p: dict) -> None:
        """New subscriptions as the file says (signed off where it says so, with its
        sign-up date kept), then the consent effects classified for existing ones. The
        subscription's `source` stays how it came about: the import is in the audit log."""
        live = "s.outcome NOT LIKE 'skip!_%' ESCAPE '!'"
        if self.mode != ImportMode.UPDATE:
            self._run(
                f"""INSERT INTO subscriptions (account_id, contact_id, group_id, active,
                       activated_at, deactivated_at, optout_reason, source)
                   SELECT :acc, s.contact_id, :gid, COALESCE(s.active, true),
                       CASE WHEN s.active = false THEN s.signup_at
                            ELSE COALESCE(s.signup_at, :now) END,
                       CASE WHEN s.active = false THEN COALESCE(s.signoff_at, :now) END,
                       CASE WHEN s.active = false THEN COALESCE(s.optout_reason, 'imported')
                       END,
                       :source
                   FROM import_chunk s
                   WHERE s.consent IN ('new_on', 'new_off') AND {live}
                     AND s.contact_id IS NOT NULL
                   ON CONFLICT (contact_id, group_id) DO NOTHING""",  # nosec B608  # constants only
                p,
            )
        # The consent effects on existing subscriptions, each joined by the primary key
        # the classification found, and only when the chunk has any: a plan that walked
        # the group's subscriptions for each line took 40 s a chunk on a growing group.
        for consent, change in (
            (
                "signed_off",
                """active = false, deactivated_at = COALESCE(s.signoff_at, :now),
                   optout_reason = COALESCE(s.optout_reason, 'imported')""",
            ),
            (
                "reactivated",
                """active = true, activated_at = s.signup_at, deactivated_at = NULL,
                   optout_reason = NULL""",
            ),
            ("signup_moved", "activated_at = s.signup_at"),
        ):
            if not self._any(consent):
                continue
            was_active = "false" if consent == "reactivated" else "true"
            self._run(
                f"""UPDATE subscriptions SET {change}
                   FROM import_chunk s
                   WHERE s.consent = :consent AND {live} AND subscriptions.id = s.sub_id
                     AND subscriptions.active = {was_active}""",  # nosec B608  # constants only
                {**p, "consent": consent},
            )

    def _any(self, consent: str) -> bool:
        return bool(
            db.session.scalar(
                text("SELECT 1 FROM import_chunk WHERE consent = :consent LIMIT 1"),
                {"consent": consent},
            )
        )

    def _tags(self, p: dict) -> None:
        outcomes = (
            "('created')"
            if self.mode == ImportMode.ADD
            else "('created', 'updated', 'restored', 'reactivated')"
        )
        self._run(
            f"""INSERT INTO tags (account_id, name, created_at)
                SELECT DISTINCT :acc, t.value, :now
                FROM import_chunk s {self.sql["tag_join"].format("s.tags")}
                WHERE s.outcome IN {outcomes} AND s.tags IS NOT NULL
                ON CONFLICT (account_id, name) DO NOTHING""",  # nosec B608  # constants and dialect fragments only
            p,
        )
        link = f"""INSERT INTO contact_tags (contact_id, tag_id)
                SELECT s.contact_id, tg.id
                FROM import_chunk s {self.sql["tag_join"].format("s.tags")}
                JOIN tags tg ON tg.account_id = :acc AND tg.name = t.value
                WHERE s.outcome IN {{outcomes}} AND s.tags IS NOT NULL
                  AND s.contact_id IS NOT NULL {{conflict}}"""  # nosec B608  # constants and dialect fragments only
        # the contacts this chunk created (all of them its own, see _insert_contacts)
        # have no links yet: a plain insert, no conflict checks; the others may have
        # some of the tags already
        self._run(link.format(outcomes="('created')", conflict=""), p)
        if self.mode != ImportMode.ADD:
            self._run(
                link.format(
                    outcomes="('updated', 'restored', 'reactivated')",
                    conflict="ON CONFLICT (contact_id, tag_id) DO NOTHING",
                ),
                p,
            )

    def _fix_search_names(self, p: dict) -> None:
        """Rows that changed only one of the two names: fold the merged names in Python."""
        if self.mode == ImportMode.ADD:
            return
        rows = db.session.execute(
            text("""SELECT c.id, c.first_name, c.last_name FROM import_chunk s
                    JOIN contacts c ON c.id = s.contact_id
                    WHERE s.outcome IN ('updated', 'restored', 'reactivated')
                      AND ((s.first_name IS NULL) <> (s.last_name IS NULL))"""),
            p,
        ).all()
        if rows:
            db.session.execute(
                text("""UPDATE contacts SET search_name = :sn, search_name_rev = :snr
                        WHERE id = :cid"""),
                [
                    {
                        "cid": cid,
                        "sn": f"{fold(f)} {fold(last)}".strip()[:400],
                        "snr": f"{fold(last)} {fold(f)}".strip()[:400],
                    }
                    for cid, f, last in rows
                ],
            )

    def _record_skips(self, p: dict) -> None:
        """One failed-rows line per skipped row: its line, the reason and the cells that
        say who it is — except for a forgotten address, whose line keeps only its number
        and the reason. The person asked to be erased; a refused re-import must not
        write them back into the report (shown on the summary, downloaded as CSV and
        kept as long as the import)."""
        arr, obj = self.sql["json_array"], self.sql["json_object"]
        self._run(
            f"""INSERT INTO import_row_problems (import_id, line, kind, code, params, cells)
                SELECT :id, line, 'skipped', SUBSTR(outcome, 6),
                  CASE WHEN outcome = 'skip_duplicate' THEN {obj}('line', (
                      SELECT MIN(r2.line) FROM import_rows r2
                      WHERE r2.import_id = :id AND r2.email = import_chunk.email))
                  ELSE {self.sql["empty_json"]} END,
                  CASE WHEN outcome = 'skip_forgotten' THEN {arr}()
                  ELSE {arr}(email, COALESCE(first_name, ''), COALESCE(last_name, '')) END
                FROM import_chunk WHERE outcome LIKE 'skip!_%' ESCAPE '!'""",  # nosec B608  # constants and dialect fragments only
            p,
        )
        # the cells of a forgotten person's row that could not be read say something
        # about them too (a birthday, a phone number): those warnings go
        self.dropped_warnings += self._run(
            """DELETE FROM import_row_problems
               WHERE import_id = :id AND kind = 'warning' AND line IN (
                   SELECT line FROM import_chunk WHERE outcome = 'skip_forgotten')""",
            p,
        )


def _chunks(start_after: int, last: int, size: int) -> list[tuple[int, int]]:
    bounds, lo = [], start_after + 1
    while lo <= last:
        bounds.append((lo, min(lo + size - 1, last)))
        lo += size
    return bounds


def _add_counts(totals: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    for outcome, count in counts.items():
        totals[outcome] = totals.get(outcome, 0) + count
    return totals


def dry_run(job: ImportJob, chunk_rows: int = CHUNK_ROWS) -> dict[str, Any]:
    """What the import would do, computed by the same statements, then rolled back.
    Statistics are refreshed before every chunk: another import may fill the account
    while this one reads (a dry run takes no turn, it writes nothing)."""
    statistics = PlannerStatistics(job)
    merger = Merger(job)
    totals: dict[str, int] = {}
    consent: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    try:
        for lo, hi in _chunks(0, job.staged_line, chunk_rows):
            statistics.refresh()
            merger.classify(lo, hi, draw_ids=False)
            _add_counts(totals, merger.counts())
            _add_counts(consent, merger.consent_counts())
            for kind, emails in merger.consent_examples().items():
                examples[kind] = (examples.get(kind, []) + emails)[:EXAMPLES_KEPT]
        merger.drop_chunk()
    finally:
        db.session.rollback()
    return {
        **summarize(totals, invalid=job.invalid),
        "consent": consent,
        "consent_examples": examples,
    }


def summarize(outcomes: dict[str, int], invalid: int) -> dict[str, Any]:
    skipped = {code: outcomes.get(f"skip_{code}", 0) for code in SKIP_CODES}
    return {
        "created": outcomes.get("created", 0),
        "updated": outcomes.get("updated", 0),
        "unchanged": outcomes.get("unchanged", 0),
        "reactivated": outcomes.get("reactivated", 0),
        "restored": outcomes.get("restored", 0),
        "skipped": sum(skipped.values()),
        "skipped_reasons": {k: v for k, v in skipped.items() if v},
        "invalid": invalid,
    }


class ChunkMerger:
    """Merges staged lines chunk by chunk; each chunk commits its writes, its counters
    and the checkpoint `merged_line` together, so a killed worker resumes at the next
    chunk and nothing is doubled."""

    def __init__(self, job: ImportJob, lease: Lease, chunk_rows: int = CHUNK_ROWS) -> None:
        self.job = job
        self.lease = lease
        self.chunk_rows = chunk_rows
        self.merger = Merger(job)
        self.statistics = PlannerStatistics(job)

    def merge_until(self, last_line: int, *, final: bool = False) -> None:
        """Merge every whole chunk up to last_line (and the rest too when final)."""
        job = self.job
        while job.merged_line < last_line:
            hi = min(job.merged_line + self.chunk_rows, last_line)
            if hi - job.merged_line < self.chunk_rows and not final:
                return
            self._merge_chunk(job.merged_line + 1, hi)

    def _merge_chunk(self, lo: int, hi: int) -> None:
        job, merger = self.job, self.merger
        self.lease.begin()
        take_turn_in_account(job.account_id)
        self.statistics.refresh()
        merger.classify(lo, hi)
        counts = merger.counts()
        if merger.write(new_contacts=counts.get("created", 0)):
            counts = merger.counts()  # a concurrent import took some new addresses first
        consent = merger.consent_counts()
        merger.tell_listeners()
        merger.drop_chunk()
        part = summarize(counts, invalid=0)
        job.warnings -= merger.dropped_warnings
        merger.dropped_warnings = 0
        job.consent_counts = _add_counts(dict(job.consent_counts or {}), consent)
        for name in ("created", "updated", "unchanged", "reactivated", "restored", "skipped"):
            setattr(job, name, getattr(job, name) + part[name])
        reasons = dict(job.skipped_reasons or {})
        for code, count in part["skipped_reasons"].items():
            reasons[code] = reasons.get(code, 0) + count
        job.skipped_reasons = reasons
        job.merged_line = hi
        self.lease.commit()
