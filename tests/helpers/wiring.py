"""What create_app has wired, read back from the app (tests/test_wiring.py).

Imported by the test and by the fresh processes it starts, which first import modules in
an order of their own: so this module imports nothing of the portal until it is called."""

from __future__ import annotations

from typing import Any


def registries(app) -> dict[str, Any]:
    from portal.accounts.views import HOME_PANELS_KEY
    from portal.contacts.views import ACTIONS_KEY
    from portal.core import signals
    from portal.support.describe import TEXTS_KEY
    from portal.support.views import ACTIONS_KEY as SUPPORT_ACTIONS_KEY

    return {
        "receivers": {s.name: signals.receivers_of(s) for s in signals.ALL},
        "blueprints": list(app.blueprints),
        "audit_texts": sorted(app.extensions[TEXTS_KEY]),
        "card_actions": [a.endpoint for a in app.extensions[ACTIONS_KEY].card],
        "bulk_actions": [a.endpoint for a in app.extensions[ACTIONS_KEY].bulk],
        "support_actions": [a.key for a in app.extensions[SUPPORT_ACTIONS_KEY]],
        "home_panels": [p.__module__ for p in app.extensions[HOME_PANELS_KEY]],
        "routes": sorted(r.rule for r in app.url_map.iter_rules()),
    }
