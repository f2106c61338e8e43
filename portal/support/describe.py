"""Audit events told as a sentence in the reader's language.

Each area keeps its sentences in a plain dict (portal/<area>/audit_texts.py,
AUDIT_TEXTS); create_app merges them into app.extensions[TEXTS_KEY]. Unknown actions
fall back to the code."""

from __future__ import annotations

from collections.abc import Mapping

from flask import current_app

from portal.core.audit import AuditEvent, AuditText

TEXTS_KEY = "portal.audit_texts"


def merge_texts(*tables: Mapping[str, AuditText]) -> dict[str, AuditText]:
    """One table from the areas' AUDIT_TEXTS; two areas naming the same action is a
    mistake that would show one of them wrongly, so it stops the app."""
    merged: dict[str, AuditText] = {}
    for table in tables:
        twice = merged.keys() & table.keys()
        if twice:
            raise RuntimeError(f"audit texts defined twice: {sorted(twice)}")
        merged.update(table)
    return merged


def audit_texts() -> Mapping[str, AuditText]:
    """The merged table of the current app."""
    return current_app.extensions[TEXTS_KEY]


def describe_event(event: AuditEvent) -> str:
    describe = audit_texts().get(event.action)
    return describe(event) if describe else event.action
