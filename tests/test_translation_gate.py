"""The translation gate: every message in code and templates is translated in de, it,
nl and pl — present, not empty, not fuzzy, with the same placeholders — and the
catalogs are current with the sources. Its second half, tests/test_translation_gate_pages.py,
renders every page and mail in every language and refuses unformatted placeholders."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from portal.config import ROOT

LANGUAGES = ("de", "it", "nl", "pl")
# The same keywords as `make translations` (Makefile: BABEL_KEYWORDS).
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "_l": None,
    "lazy_gettext": None,
    "lazy_ngettext": (1, 2),
    "lazy_pgettext": ((1, "c"), 2),
    "lazy_npgettext": ((1, "c"), 2, 3),
}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")
PLURAL_FORMS = {"de": 2, "it": 2, "nl": 2, "pl": 3}


def _source_messages() -> set[tuple[str | None, str]]:
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.add((context, msgid))
    return found


@pytest.fixture(scope="module")
def source_messages():
    return _source_messages()


def _catalog(lang: str):
    path = ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        return read_po(fh, locale=lang)


def test_the_makefile_extracts_with_the_same_keywords():
    makefile = (ROOT / "Makefile").read_text()
    for keyword in ("_l", "lazy_gettext", "lazy_ngettext:1,2"):
        assert f"-k {keyword}" in makefile


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang, source_messages):
    catalog = _catalog(lang)
    present = {(m.context, m.id[0] if isinstance(m.id, tuple) else m.id) for m in catalog if m.id}
    missing = sorted(msgid for _, msgid in source_messages - present)
    assert not missing, f"{lang}: not in the catalog (run `make translations`): {missing[:10]}"
    problems = []
    for m in catalog:
        if not m.id:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.fuzzy:
            problems.append(("fuzzy", m.id))
        if any(not s for s in strings):
            problems.append(("empty", m.id))
    assert not problems, f"{lang}: {problems[:10]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_match(lang):
    wrong = []
    for m in _catalog(lang):
        if not m.id:
            continue
        if isinstance(m.id, tuple):
            allowed = set(PLACEHOLDER.findall(m.id[0])) | set(PLACEHOLDER.findall(m.id[1]))
            extra = any(not set(PLACEHOLDER.findall(form)) <= allowed for form in m.string)
            plural = set(PLACEHOLDER.findall(m.string[-1])) != set(PLACEHOLDER.findall(m.id[1]))
            if extra or plural:
                wrong.append(m.id)
        elif set(PLACEHOLDER.findall(m.id)) != set(PLACEHOLDER.findall(m.string)):
            wrong.append(m.id)
    assert not wrong, f"{lang}: placeholders differ in {wrong[:10]}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_plural_forms(lang):
    catalog = _catalog(lang)
    assert catalog.num_plurals == PLURAL_FORMS[lang]
    for m in catalog:
        if isinstance(m.id, tuple):
            assert len(m.string) == PLURAL_FORMS[lang], (lang, m.id)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_translations_are_not_english_copies(lang):
    """A few identical strings are fine (Backup, Tags, Import); most must differ."""
    catalog = [m for m in _catalog(lang) if m.id and not isinstance(m.id, tuple)]
    copies = [m.id for m in catalog if m.string == m.id and len(m.id) > 12]
    assert len(copies) <= len(catalog) // 20, f"{lang}: untranslated copies {copies[:10]}"


def test_catalogs_compile(tmp_path):
    from babel.messages.mofile import write_mo

    for lang in LANGUAGES:
        with (tmp_path / f"{lang}.mo").open("wb") as fh:
            write_mo(fh, _catalog(lang))
        assert (tmp_path / f"{lang}.mo").stat().st_size > 1000


def test_compiled_catalogs_are_current():
    """make test compiles the catalogs; a stale .mo would show old texts."""
    for lang in LANGUAGES:
        po = ROOT / "translations" / lang / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime - 1, (
            f"{mo} is missing or older than its .po: run `make compile-translations`"
        )
