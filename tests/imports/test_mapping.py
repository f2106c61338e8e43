"""The automatic mapping: header words of every target in five languages and as other
tools write them; a date or a yes/no column of the same name told apart by its cells."""

from __future__ import annotations

import pytest

from portal.imports import mapping as m
from portal.imports.mapping import auto_map, split_full_name, split_tags

# target -> one header per language (en, de, it, nl, pl), as people name their columns
WORDS = {
    m.EMAIL: ("Email address", "E-Mail-Adresse", "Indirizzo email", "E-mailadres", "Adres e-mail"),
    m.FIRST_NAME: ("First name", "Vorname", "Nome", "Voornaam", "Imię"),
    m.LAST_NAME: ("Last name", "Nachname", "Cognome", "Achternaam", "Nazwisko"),
    m.LAST_NAME_PREFIX: (
        "Name prefix", "Namenszusatz", "Prefisso del cognome", "Tussenvoegsel",
        "Przedrostek nazwiska",
    ),
    m.FULL_NAME: ("Full name", "Vor- und Nachname", "Nome e cognome", "Naam", "Imię i nazwisko"),
    m.TAGS: ("Tags", "Schlagwörter", "Etichette", "Labels", "Tagi"),
    m.STATUS: ("Status", "Anmeldestatus", "Stato", "Inschrijvingsstatus", "Status zapisu"),
    m.ACTIVE: ("Active", "Aktiv", "Attivo", "Actief", "Aktywny"),
    m.BLOCKED: ("Blocked", "Gesperrt", "Bloccato", "Geblokkeerd", "Zablokowany"),
    m.OPTED_OUT: ("Opted out", "Opt-out", "Opt-out", "Opt-out", "Rezygnacja"),
    m.OPTOUT_REASON: ("Unsubscribe reason", "Abmeldegrund", "Motivo", "Afmeldreden", "Powód"),
    m.SIGNUP_AT: ("Subscribed at", "Angemeldet am", "Iscritto il", "Aangemeld op", "Data zapisu"),
    m.CONFIRMED_AT: (
        "Confirmed at", "Bestätigt am", "Confermato il", "Bevestigd op", "Data potwierdzenia"
    ),
    m.ADDED_AT: ("Date added", "Erstellt am", "Data creazione", "Aangemaakt op", "Data utworzenia"),
    m.SIGNOFF_AT: (
        "Unsubscribed on", "Abgemeldet am", "Disiscritto il", "Afgemeld op", "Data wypisu"
    ),
    m.BOUNCED_AT: (
        "Bounce date", "Unzustellbar seit", "Rimbalzato il", "Onbestelbaar sinds", "Data odbicia"
    ),
}  # fmt: skip


@pytest.mark.parametrize("target", list(WORDS))
@pytest.mark.parametrize("lang", range(5), ids=["en", "de", "it", "nl", "pl"])
def test_every_target_has_header_words_in_five_languages(target, lang):
    header = ["E-Mail", WORDS[target][lang]] if target != m.EMAIL else [WORDS[target][lang]]
    assert auto_map(header)[-1] == target


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ("OPTIN_TIME", m.SIGNUP_AT),
        ("CONFIRM_TIME", m.CONFIRMED_AT),
        ("UNSUB_TIME", m.SIGNOFF_AT),
        ("CLEAN_TIME", m.BOUNCED_AT),
        ("ADDED_TIME", m.ADDED_AT),
        ("created_at", m.ADDED_AT),
        ("date_added", m.ADDED_AT),
        ("Aktiviert am", m.SIGNUP_AT),
        ("EMAIL_BLACKLISTED", m.BLOCKED),
        ("name", m.FULL_NAME),
        ("Miasto", m.IGNORE),  # no target: the mapping page offers a new custom field
    ],
)
def test_other_tools_headers(header, target):
    assert auto_map(["email", header])[1] == target


def test_a_name_beside_a_first_name_is_the_last_name():
    assert auto_map(["E-Mail", "Vorname", "Name"]) == [m.EMAIL, m.FIRST_NAME, m.LAST_NAME]
    assert auto_map(["E-Mail", "Name"]) == [m.EMAIL, m.FULL_NAME]


def test_the_cells_tell_a_date_column_from_a_yes_no_column_of_the_same_name():
    header = ["E-Mail", "Abgemeldet"]
    assert auto_map(header, samples=[["a@x.de", "12.03.2024"]])[1] == m.SIGNOFF_AT
    assert auto_map(header, samples=[["a@x.de", "ja"], ["b@x.de", "nein"]])[1] == m.OPTED_OUT


def test_each_target_once_the_first_column_keeps_it():
    assert auto_map(["E-Mail", "Mail", "Vorname"]) == [m.EMAIL, m.IGNORE, m.FIRST_NAME]


@pytest.mark.parametrize(
    ("whole", "parts"),
    [
        ("Anna Maria Müller", ("Anna Maria", "Müller")),
        ("Jan van der Berg", ("Jan", "van der Berg")),
        ("Ludwig von Beethoven", ("Ludwig", "von Beethoven")),
        ("Lucia De Santis", ("Lucia", "De Santis")),
        ("Müller, Anna", ("Anna", "Müller")),
        ("Cher", ("Cher", "")),
        ("  ", ("", "")),
    ],
)
def test_full_names_are_split(whole, parts):
    assert split_full_name(whole) == parts


def test_tags_lose_their_quotes_and_case_doubles():
    assert split_tags('"Kunde","VIP","kunde"') == ["Kunde", "VIP"]
    assert split_tags("„Messe 2024“; Händler | händler") == ["Messe 2024", "Händler"]
