"""The support team's reset of an account's provider link (seed article: only the
Spreadmind team can reset the integration tool). It lives on the support console's
blueprint, so the staff-only 404, the CSRF check and the time-limited staff access with
its stated reason apply; the reason of the access is the reason of the reset. It is
the support area's (the top layer, which may use integrations), offered on the overview
by the area's init_app (add_account_action)."""

from __future__ import annotations

from flask import flash, g, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.extensions import db
from portal.integrations import service
from portal.support.views import SupportAction, bp, staff_account_view


@bp.route("/accounts/<slug>/integration/reset", methods=["POST"])
@staff_account_view
def reset_integration():
    account = g.support_account
    if request.form.get("confirm") != "yes":
        flash(_("Please confirm the reset."), "warning")
    elif service.reset_link(
        account,
        actor=current_user._get_current_object(),
        reason=g.staff_access.reason,
        ip=request.remote_addr,
    ):
        db.session.commit()
        flash(
            _("The provider link is reset. The account's owners can now link the new provider."),
            "success",
        )
    else:
        flash(_("This account has no linked provider."), "info")
    return redirect(url_for("support.account", slug=account.slug))


RESET_INTEGRATION = SupportAction(
    key="reset-integration",
    label=_l("Reset the provider link"),
    endpoint="support.reset_integration",
    description=_l(
        "The linked provider stops receiving events; the owners can then link another "
        "provider and a full sync starts after they accept the tag mapping."
    ),
    confirm=_l("Yes, reset the link (the reason of this access is recorded)"),
    available=lambda account: service.current_link(account) is not None,
)
