"""The contact list's text search: a part of an address or a name, or the start of
either (short terms, and the prefix mode), on the folded search columns."""

from __future__ import annotations

from sqlalchemy import and_, or_

from portal.contacts.models import Contact, fold
from portal.core import sql


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column, term: str):
    """`column` starts with `term`, in a form the database serves from an index:
    LIKE with the pattern opclass on PostgreSQL, a range on SQLite (whose LIKE is
    case-insensitive and skips a binary index). The stored values are already
    lower-cased / folded, and so is `term`."""
    if sql.is_postgres():
        return column.like(_escape_like(term) + "%", escape="\\")
    if ord(term[-1]) >= 0x10FFFF:
        return column >= term
    upper = term[:-1] + chr(ord(term[-1]) + 1)
    return and_(column >= term, column < upper)


SEARCH_ANYWHERE_FROM = 3  # characters; shorter terms match the start (see below)


def _contains(column, term: str):
    """`column` contains `term` literally (% and _ typed by the user are no wildcards).
    PostgreSQL serves it from the trigram (GIN) index of the column; SQLite scans."""
    return column.like("%" + _escape_like(term) + "%", escape="\\")


def search_condition(q: str, *, anywhere: bool = True):
    """The free search: the lower-cased term against the address, the folded term
    against the name ("first last"), each word of it anywhere in the name, so that
    "neu" finds bernd.neu02@... and "Neu Bernd" finds Bernd Neu.

    A term of one or two characters matches the start of the address or of the first
    or last name only: a trigram index cannot serve it, and on a million contacts a
    two-letter substring would read every row. A term with "@" searches the address
    only. With anywhere=False (the API) every term matches by prefix, as before."""
    term = q.strip()
    email_term = term.lower()
    name_term = fold(term)
    words = name_term.split()
    if anywhere and len(email_term) >= SEARCH_ANYWHERE_FROM:
        matches = [_contains(Contact.email, email_term)]
        if words and "@" not in term:
            if max(len(w) for w in words) >= SEARCH_ANYWHERE_FROM:
                matches.append(and_(*(_contains(Contact.search_name, w) for w in words)))
            else:
                matches += [
                    _prefix(Contact.search_name, name_term),
                    _prefix(Contact.search_name_rev, name_term),
                ]
        return or_(*matches)
    matches = [_prefix(Contact.email, email_term)]
    if name_term and "@" not in term:
        matches += [
            _prefix(Contact.search_name, name_term),
            _prefix(Contact.search_name_rev, name_term),
        ]
    return or_(*matches)
