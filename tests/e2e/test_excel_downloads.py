"""Backups for Excel, in a real browser, in all five languages (issue 17, point 5): the
owner opens the backups page in en, de, it, nl and pl and downloads the backup of
"Newsletter". Each file starts with the BOM and a header in the page's language,
separated as that language's Excel expects (";" for de, it, nl, pl; "," for en), the
custom field by its label; its times are local with the offset; its name is in local
time without spaces. Screenshots: the backups page per language and the downloaded file
shown as a table split at the language's delimiter (test-artifacts/screenshots/)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime

from playwright.sync_api import expect

from portal.backups.snapshot import snapshot
from portal.contacts.models import Group
from portal.extensions import db
from portal.imports import headers as h

DELIMITER = {"en": ",", "de": ";", "it": ";", "nl": ";", "pl": ";"}


def test_owner_downloads_a_backup_for_excel_in_each_language(
    app, owner, owner_page, newsletter, live_server, tmp_path, screenshot
):
    data = newsletter["data"]
    data.field("city", "Stadt")
    data.contact(
        "lukasz@przyklad.pl",
        "Łukasz",
        "Brzęczyszczykiewicz",
        unsubscribed=((newsletter["group"], "complained"),),
        signup_at=datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
        signoff_at=datetime(2026, 12, 5, 6, 9, tzinfo=UTC),
        tags=("Żółw",),
        fields={"city": "Łódź"},
    )
    with app.app_context():
        backup = snapshot(db.session.get(Group, newsletter["group"]), reason="manual")
        db.session.commit()
        backup_id = backup.id

    page = owner_page
    for language in ("en", "de", "it", "nl", "pl"):
        page.goto(f"{live_server}/a/acme/backups?lang={language}")
        expect(page.locator("html")).to_have_attribute("lang", re.compile(f"^{language}"))
        link = page.locator(f"#download-{backup_id}")
        expect(link).to_be_visible()
        screenshot(page, f"-{language}")
        with page.expect_download() as info:
            link.click()
        download = info.value
        # local time (Berlin), no spaces
        assert re.fullmatch(
            r"backup-Newsletter-\d{4}-\d\d-\d\d-\d{4}\.csv", download.suggested_filename
        )
        target = tmp_path / f"{language}-{download.suggested_filename}"
        download.save_as(target)
        content = target.read_bytes()
        assert content.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
        text = content.decode("utf-8-sig")
        first_line = text.split("\r\n", 1)[0]
        assert first_line == DELIMITER[language].join([*h.PORTAL_HEADERS[language], "Stadt"])
        rows = list(csv.reader(io.StringIO(text), delimiter=DELIMITER[language]))
        lukasz = next(r for r in rows if r[0] == "lukasz@przyklad.pl")
        assert lukasz[1:3] == ["Łukasz", "Brzęczyszczykiewicz"]
        assert lukasz[4] == h.YES_NO_WORDS[language][1]
        assert lukasz[6] == "2026-12-05 07:09:00+01:00"  # Berlin time with the offset
        assert lukasz[7] == h.REASON_WORDS[language]["complained"]
        # the file as a table, split as that language's Excel splits it
        _show_as_table(page.context.new_page(), rows, screenshot, f"-{language}-file")


def _show_as_table(page, rows: list[list[str]], screenshot, suffix: str) -> None:
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    page.set_content(
        "<style>td{border:1px solid #999;padding:2px 6px;font:13px sans-serif}"
        "tr:first-child td{font-weight:bold;background:#eee}</style>"
        f"<table style='border-collapse:collapse'>{cells}</table>"
    )
    screenshot(page, suffix)
    page.close()
