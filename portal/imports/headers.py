"""Header words of every import target, in the five languages and as other tools write
them. Matching ignores case, accents, spaces and punctuation (mapping.normalize_header),
so "E-Mail-Adresse", "e-mail adresse" and "EMAIL_ADDRESS" are one entry.

Where one word means different things in different lists, it is not here but decided by
the neighbouring columns or the values (mapping.auto_map): a German "Name" beside a
"Vorname" is the last name, alone it is the full name; an "Abgemeldet" column of dates is
the sign-off date, one of ja/nein is the opt-out flag."""

from __future__ import annotations

EMAIL = "email"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
FULL_NAME = "full_name"
LAST_NAME_PREFIX = "last_name_prefix"
TAGS = "tags"
STATUS = "status"
ACTIVE = "active"
BLOCKED = "blocked"
OPTED_OUT = "opted_out"
SIGNUP_AT = "signup_at"
CONFIRMED_AT = "confirmed_at"
ADDED_AT = "added_at"
SIGNOFF_AT = "signoff_at"
BOUNCED_AT = "bounced_at"
OPTOUT_REASON = "optout_reason"

SYNONYMS: dict[str, tuple[str, ...]] = {
    EMAIL: (
        "email", "e-mail", "e mail", "mail", "email address", "e-mail address", "emailaddress",
        "email_address", "emailadresse", "e-mail-adresse", "mailadresse", "e-mail adresse",
        "indirizzo email", "indirizzo e-mail", "posta elettronica", "email contatto",
        "e-mailadres", "emailadres", "e-mail adres", "mailadres",
        "adres e-mail", "adres email", "adres mailowy", "e-mail kontaktu",
        "correo", "courriel", "subscriber email", "contact email",
    ),
    FIRST_NAME: (
        "first name", "firstname", "first_name", "given name", "forename", "fname",
        "vorname", "nome", "nome di battesimo", "voornaam", "roepnaam", "imie", "imię",
        "prenom", "prénom",
    ),
    LAST_NAME: (
        "last name", "lastname", "last_name", "surname", "family name", "lname",
        "nachname", "familienname", "zuname", "cognome", "achternaam", "familienaam",
        "nazwisko", "nom",
    ),
    LAST_NAME_PREFIX: (
        "tussenvoegsel", "tussenvoegsels", "voorvoegsel", "voorvoegsels", "namenszusatz",
        "name prefix", "surname prefix", "particle", "prefisso del cognome",
        "przedrostek nazwiska",
    ),
    FULL_NAME: (
        "full name", "fullname", "full_name", "name", "contact name", "subscriber name",
        "vollständiger name", "vor- und nachname", "vor und nachname", "kontaktname",
        "nome e cognome", "nome completo", "nominativo", "naam", "volledige naam",
        "voor- en achternaam", "imię i nazwisko", "imie i nazwisko", "nazwa kontaktu",
    ),
    TAGS: (
        "tags", "tag", "labels", "label", "schlagworte", "schlagwörter", "stichworte",
        "etichette", "etichetta", "tagi", "etykiety",
    ),
    STATUS: (
        "status", "subscription status", "subscriber status", "member status",
        "email status", "contact status", "abonnementstatus", "anmeldestatus",
        "empfängerstatus", "stato", "stato iscrizione", "stato contatto",
        "abonnementsstatus", "inschrijvingsstatus", "status subskrypcji", "status zapisu",
        "status kontaktu",
    ),
    ACTIVE: (
        "active", "is subscribed", "aktiv", "attivo", "iscritto",
        "actief", "ingeschreven", "aktywny", "zapisany",
    ),
    BLOCKED: (
        "blocked", "blocklisted", "blacklisted", "blacklist", "blocklist", "email blacklisted",
        "email_blacklisted", "do not contact", "donotcontact", "do_not_contact", "dnc",
        "suppressed", "gesperrt", "blockiert", "sperrliste", "bloccato", "bloccata",
        "lista nera", "non contattare", "geblokkeerd", "zwarte lijst", "niet benaderen",
        "zablokowany", "czarna lista", "nie kontaktować",
    ),
    OPTED_OUT: (
        "opt-out", "optout", "opted out", "opted_out", "is unsubscribed",
        "email opt out", "emailoptout", "rezygnacja",
    ),
    SIGNUP_AT: (
        "sign-up date", "signup date", "signed up", "signed up at", "subscribed",
        "subscribed at", "subscription date", "subscribed on", "opt-in date", "opt-in time",
        "optin time", "optin_time", "optin date", "opted in at", "activated", "activated at",
        "activation date",
        "anmeldedatum", "angemeldet", "angemeldet am", "anmeldung", "aktiviert am",
        "aktivierungsdatum", "eingetragen am", "opt-in datum",
        "data iscrizione", "data di iscrizione", "iscritto il", "iscrizione",
        "data attivazione", "attivato il",
        "aanmelddatum", "aangemeld", "aangemeld op", "aanmelding", "geactiveerd op",
        "inschrijfdatum", "ingeschreven op",
        "data zapisu", "data zapisania", "zapisany dnia", "data aktywacji", "data opt-in",
    ),
    CONFIRMED_AT: (
        "confirmed", "confirmed at", "confirm time", "confirm_time", "confirmation date",
        "confirmation time", "double opt-in date", "doi date", "doi confirmed",
        "bestätigt am", "bestätigungsdatum", "doi-bestätigung", "doi bestätigt",
        "confermato il", "data conferma", "data di conferma",
        "bevestigd op", "bevestigingsdatum",
        "data potwierdzenia", "potwierdzony dnia",
    ),
    ADDED_AT: (
        "created", "created at", "created_at", "created on", "creation date", "date added",
        "date_added", "added", "added at", "added time", "added_time", "registered",
        "registered at", "registration date", "date created", "datecreated",
        "erstellt", "erstellt am", "erstellungsdatum", "hinzugefügt am", "angelegt am",
        "registriert am", "eintragungsdatum",
        "creato il", "data creazione", "data di creazione", "aggiunto il", "data aggiunta",
        "registrato il", "data registrazione",
        "aangemaakt op", "aanmaakdatum", "toegevoegd op", "datum toegevoegd",
        "geregistreerd op", "registratiedatum",
        "data utworzenia", "data dodania", "utworzono", "dodano", "data rejestracji",
    ),
    SIGNOFF_AT: (
        "sign-off date", "signoff date", "unsubscribed", "unsubscribed at", "unsubscribed on",
        "unsubscribe date", "unsubscribe time", "unsub time", "unsub_time", "opt-out date",
        "optout date", "opt-out time", "deactivated", "deactivated at", "deactivation date",
        "abmeldedatum", "abgemeldet", "abgemeldet am", "abmeldung", "deaktiviert am",
        "ausgetragen am",
        "data disiscrizione", "data di disiscrizione", "disiscritto il", "disiscrizione",
        "data disattivazione", "disattivato il",
        "afmelddatum", "afgemeld", "afgemeld op", "afmelding", "gedeactiveerd op",
        "uitgeschreven op",
        "data wypisu", "data wypisania", "wypisany", "wypisany dnia", "data dezaktywacji",
        "data rezygnacji",
    ),
    BOUNCED_AT: (
        "bounced", "bounced at", "bounce date", "bounce time", "clean time", "clean_time",
        "cleaned at", "cleaned", "hard bounce date",
        "bounce datum", "unzustellbar seit", "unzustellbar am",
        "data rimbalzo", "rimbalzato il",
        "bounce datum", "onbestelbaar sinds",
        "data odbicia", "odbity dnia",
    ),
    OPTOUT_REASON: (
        "opt-out reason", "optout reason", "unsubscribe reason", "unsub reason",
        "unsub_reason", "reason", "dnc reason", "sign-off reason", "signoff reason",
        "abmeldegrund", "grund der abmeldung", "grund",
        "motivo disiscrizione", "motivo", "motivo della disiscrizione",
        "afmeldreden", "reden afmelding", "reden",
        "powód wypisu", "przyczyna wypisu", "powód",
    ),
}  # fmt: skip

# Words that name a person's whole name in one list and the last name in another
# ("Vorname; Name"): the last name when a first-name column is beside them.
FULL_OR_LAST = ("name", "naam")

# --- the portal's own files, localized for Excel ------------------------------------------
# The backups and CSV exports people download name their columns in the reader's language
# (portal/excel_csv.py). These words are part of the file format: the import recognises
# each tuple as the portal's own file (mapping.portal_language) and maps it without a
# question, so they live here, fixed, and not in the catalogs, where a changed msgstr
# would silently stop files already downloaded from mapping back. Same order as
# mapping.PORTAL_HEADER: email, first name, last name, tags, active, sign-up date,
# sign-off date, sign-off reason. Every word is also a synonym above.
PORTAL_HEADERS: dict[str, tuple[str, ...]] = {
    "en": ("Email", "First name", "Last name", "Tags", "Active", "Sign-up date",
           "Sign-off date", "Sign-off reason"),
    "de": ("E-Mail", "Vorname", "Nachname", "Tags", "Aktiv", "Anmeldedatum", "Abmeldedatum",
           "Abmeldegrund"),
    "it": ("Email", "Nome", "Cognome", "Tag", "Attivo", "Data di iscrizione",
           "Data di disiscrizione", "Motivo della disiscrizione"),
    "nl": ("E-mailadres", "Voornaam", "Achternaam", "Tags", "Actief", "Aanmelddatum",
           "Afmelddatum", "Reden afmelding"),
    "pl": ("Adres e-mail", "Imię", "Nazwisko", "Tagi", "Aktywny", "Data zapisu", "Data wypisu",
           "Powód wypisu"),
}  # fmt: skip
# the words of the "active" column (all of them are in values.YES / values.NO)
YES_NO_WORDS: dict[str, tuple[str, str]] = {
    "en": ("yes", "no"), "de": ("ja", "nein"), "it": ("sì", "no"), "nl": ("ja", "nee"),
    "pl": ("tak", "nie"),
}  # fmt: skip
# the sign-off reasons (contacts.models.OptoutReason) in the reason column; the import
# reads every one back as exactly this reason (profiles.PORTAL_REASONS)
REASON_WORDS: dict[str, dict[str, str]] = {
    "en": {"unsubscribed": "unsubscribed", "bounced": "bounced", "complained": "complained",
           "manual": "manual", "blocked": "blocked", "unconfirmed": "unconfirmed",
           "imported": "imported"},
    "de": {"unsubscribed": "abgemeldet", "bounced": "unzustellbar", "complained": "Beschwerde",
           "manual": "manuell", "blocked": "gesperrt", "unconfirmed": "unbestätigt",
           "imported": "importiert"},
    "it": {"unsubscribed": "disiscritto", "bounced": "rimbalzato", "complained": "reclamo",
           "manual": "manuale", "blocked": "bloccato", "unconfirmed": "non confermato",
           "imported": "importato"},
    "nl": {"unsubscribed": "afgemeld", "bounced": "onbestelbaar", "complained": "klacht",
           "manual": "handmatig", "blocked": "geblokkeerd", "unconfirmed": "onbevestigd",
           "imported": "geïmporteerd"},
    "pl": {"unsubscribed": "wypisany", "bounced": "odbity", "complained": "skarga",
           "manual": "ręcznie", "blocked": "zablokowany", "unconfirmed": "niepotwierdzony",
           "imported": "zaimportowany"},
}  # fmt: skip
