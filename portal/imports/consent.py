"""The consent rule (DESIGN.md) as SQL: what a staged line does to its contact's
subscription in the import's group. One CASE, used by the dry run and the run alike
(merge.py), so the check step says before anything is written what the import will do."""

from __future__ import annotations

# The consent effect of a staged line `{s}` on its contact's subscription `{sub}` in the
# import's group (the fragments are written for both the classification, where the
# subscription is a joined row, and the chunk table, where its columns are copied).
SIGN_OFF = """{sub}active AND {s}active = false AND NOT ({s}signoff_at IS NOT NULL
    AND {sub}activated_at IS NOT NULL AND {sub}activated_at > {s}signoff_at)"""
KEPT_NEWER = """{sub}active AND {s}active = false AND {s}signoff_at IS NOT NULL
    AND {sub}activated_at IS NOT NULL AND {sub}activated_at > {s}signoff_at"""
REACTIVATABLE = """{sub}active = false AND {s}active AND {s}signup_at IS NOT NULL
    AND {s}signup_at > COALESCE({sub}deactivated_at, {sub}activated_at)"""
SIGNUP_MOVED = """:consent AND {sub}active AND {s}active AND {s}signup_at IS NOT NULL
    AND ({sub}activated_at IS NULL OR {s}signup_at <> {sub}activated_at)"""
CONSENT_CASE = (
    """CASE
    WHEN {found} IS NULL OR NOT {in_group} THEN CASE
        WHEN {found} IS NOT NULL AND :mode = 'update' THEN NULL
        WHEN {s}active = false THEN 'new_off' ELSE 'new_on' END
    WHEN """
    + SIGN_OFF
    + """ THEN 'signed_off'
    WHEN """
    + KEPT_NEWER
    + """ THEN 'kept_newer'
    WHEN """
    + REACTIVATABLE
    + """ THEN CASE WHEN :consent THEN 'reactivated' ELSE 'stays_off' END
    WHEN """
    + SIGNUP_MOVED
    + """ THEN 'signup_moved'
    ELSE NULL END"""
)
# the consent effects the check step lists by address (the others by count)
LISTED_CONSENT = ("kept_newer", "reactivated", "stays_off")
EXAMPLES_KEPT = 100


def consent_case(*, s: str, sub: str, found: str, in_group: str) -> str:
    return CONSENT_CASE.format(s=s, sub=sub, found=found, in_group=in_group)
