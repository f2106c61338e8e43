"""The events one area tells and others act on, as blinker signals (Flask's own).

A lower area sends; a higher area connects its receiver in its init_app, which
create_app calls in one fixed order (portal/__init__.py). So whether a rule exists —
"a backup before every portal import" — is decided in one place, not by which module
happened to import which. Receivers run in the sender's transaction, in no promised order
(each signal has one receiver today); an exception in one stops the sender (a failed
backup refuses the group's deletion).

    before_import        imports.service.run: sender ImportJob -> backups (snapshot)
    before_group_delete  contacts.service.delete_group: sender Group, actor, source
                         -> backups (snapshot; its ServiceError refuses the deletion)
    contact_changed      portal.events.emit / emit_select: sender events.Event
                         -> integrations (an outbox row for a linked provider)
    before_erasure       lifecycle.traces.redact: sender account id, emails
                         -> integrations (withdraws exports); returns the files removed
"""

from __future__ import annotations

import weakref

from blinker import Namespace, Signal

portal_signals = Namespace()

# a portal import is about to write into its group (the job row, source "ui")
before_import = portal_signals.signal("before-import")
# a group is about to be deleted; kwargs actor, source; raise ServiceError to refuse
before_group_delete = portal_signals.signal("before-group-delete")
# contacts were created, changed, deleted, restored, purged or forgotten (events.Event)
contact_changed = portal_signals.signal("contact-changed")
# "forget me" in an account (sender: the account id, kwarg emails); each receiver
# removes what it keeps of the people and returns the number of files it removed
before_erasure = portal_signals.signal("before-erasure")

ALL = (before_import, before_group_delete, contact_changed, before_erasure)


def receivers_of(signal: Signal) -> list[str]:
    """The receivers' dotted names, sorted (the wiring test and the docs read it)."""
    names = []
    for receiver in signal.receivers.values():
        function = receiver() if isinstance(receiver, weakref.ref) else receiver
        names.append(f"{function.__module__}.{function.__qualname__}")
    return sorted(names)
