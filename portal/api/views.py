"""The portal page of the API: /a/<account>/settings/api.

Every member sees the account's keys (names, scopes, first characters, last use — no
secrets) and the link to the document; owners and admins create and revoke keys. A new
key is shown once, on the page the form redirects to, and never again: it waits in the
session only until that page takes it, so reloading the page shows it no more and makes
no second key (which answering the POST itself did)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from portal.accounts.models import Role
from portal.api import service
from portal.api.models import Scope
from portal.core.errors import ServiceError
from portal.core.forms import EmptyForm
from portal.extensions import db
from portal.tenancy import can, require_role, tenant_blueprint

bp = tenant_blueprint("api_keys", __name__, "/settings/api")

SCOPE_LABELS = {
    Scope.READ.value: _l("Read"),
    Scope.WRITE.value: _l("Read and write"),
}


class ApiKeyForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(), Length(max=service.MAX_NAME)],
        description=_l("Where the key is used, e.g. “Shop” or “CRM sync”."),
    )
    scope = RadioField(
        _l("Scope"),
        choices=[SelectChoice(value, label) for value, label in SCOPE_LABELS.items()],
        default=Scope.READ.value,
    )


def _render(form: ApiKeyForm, *, new_key: str | None = None, status: int = 200):
    response = render_template(
        "api/keys.html",
        form=form,
        keys=service.keys_of(g.account),
        manage=can(Role.ADMIN),
        new_key=new_key,
        scope_labels=SCOPE_LABELS,
        revoke_form=EmptyForm(),
        document_url=url_for("api.openapi_document"),
    )
    return response, status, {"Cache-Control": "no-store"}


@bp.route("", methods=["GET", "POST"])
def keys():
    form = ApiKeyForm()
    if request.method == "POST":
        if not can(Role.ADMIN):
            abort(403)
        if form.validate_on_submit():
            try:
                key, plain = service.create_key(
                    g.account,
                    name=form.name.data,
                    scope=form.scope.data,
                    actor=current_user,
                    source="ui",
                    ip=request.remote_addr,
                )
            except ServiceError as exc:
                form.name.errors = [*form.name.errors, str(exc)]
            else:
                db.session.commit()
                session[NEW_KEY] = {"account": g.account.id, "key": plain}
                return redirect(url_for("api_keys.keys"))
        return _render(form, status=200)
    new = session.pop(NEW_KEY, None)
    if new and new.get("account") == g.account.id:
        return _render(form, new_key=new["key"])
    return _render(form)


NEW_KEY = "new_api_key"  # the session's slot for a key made a moment ago


@bp.route("/<int:key_id>/revoke", methods=["POST"])
@require_role(Role.ADMIN)
def revoke(key_id: int):
    key = service.get_key(g.account, key_id) if key_id < 2**31 else None
    if key is None:
        abort(404)
    if EmptyForm().validate_on_submit() and service.revoke_key(
        key, actor=current_user, ip=request.remote_addr
    ):
        db.session.commit()
        flash(_("The key “%(name)s” has been revoked.", name=key.name), "success")
    return redirect(url_for("api_keys.keys"))
