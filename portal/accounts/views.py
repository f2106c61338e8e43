"""Sign-in, password reset, invitations, the account switcher, the account home
page and the account's General and Team settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from portal import clock, i18n
from portal.accounts import forms, sender, service
from portal.accounts.models import Account, Role, User
from portal.core import audit
from portal.core.forms import EmptyForm
from portal.extensions import db, limiter
from portal.tenancy import can, require_role, tenant_blueprint, user_accounts

bp = Blueprint("accounts", __name__)
account_bp = tenant_blueprint("account", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths; anything else would be an open redirect. A line
    break or another control character is refused too: urlsplit drops them before it
    looks (so "/a\r\nX: 1" looked harmless), and the Location header refused them (a 500)."""
    if not target or service.has_control_characters(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _landing_url() -> str:
    accounts = user_accounts(current_user)
    if not accounts and current_user.is_staff and "support.index" in current_app.view_functions:
        return url_for("support.index")  # staff are members of nothing: their console
    if len(accounts) == 1:
        return url_for("account.home", account_slug=accounts[0][0].slug)
    return url_for("accounts.choose_account")


def _sign_in(user: User, *, remember: bool) -> None:
    """Sign the browser in under a sign-in of its own: the session and the remember
    cookie carry its token (not the user id), so ending it refuses every copy."""
    login = service.start_login(user, remember=remember)
    login_user(user, remember=remember)
    session["_user_id"] = login  # what Flask-Login keeps and writes into the remember cookie


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _submitted_email() -> str:
    """Second rate-limit key: guesses against one address from many IPs count together."""
    return "email:" + (request.form.get("email") or "").strip().lower()


@bp.route("/")
def index():
    if current_user.is_authenticated:
        return redirect(_landing_url())
    return redirect(url_for("accounts.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_submitted_email)
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")) or _landing_url())
    form = forms.LoginForm()
    if form.validate_on_submit():
        user = service.authenticate(form.email.data, form.password.data)
        if user is None:
            flash(_("Email or password is wrong."), "danger")
            return render_template("accounts/login.html", form=form), 401
        _sign_in(user, remember=bool(form.remember.data))
        audit.record(
            "user.login", actor=user, object_type="user", object_id=user.id, ip=request.remote_addr
        )
        db.session.commit()
        return redirect(_safe_next(request.args.get("next")) or _landing_url())
    return render_template("accounts/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    form = EmptyForm()
    if form.validate_on_submit():
        service.end_login(session.get("_user_id"))
        logout_user()
        db.session.commit()
        flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password():
    form = forms.ForgotPasswordForm()
    if form.validate_on_submit():
        service.request_password_reset(form.email.data)
        db.session.commit()
        flash(
            _("If the address belongs to a user, a link to reset the password is on its way."),
            "info",
        )
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    user = service.user_for_reset_token(token)
    if user is None:
        flash(_("This link is invalid or has expired. Please ask for a new one."), "danger")
        return redirect(url_for("accounts.forgot_password"))
    form = forms.NewPasswordForm()
    if form.validate_on_submit():
        try:
            service.reset_password(user, form.password.data, ip=request.remote_addr)
        except service.ServiceError as exc:
            form.password.errors.append(str(exc))
        else:
            db.session.commit()
            logout_user()  # every sign-in has ended, this browser's too
            flash(_("Your password has been changed. Please sign in."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form)


@bp.route("/sender/confirm/<token>", methods=["GET", "POST"])
def confirm_sender(token: str):
    """Opened from the mail by whoever reads that mailbox (not necessarily a user): a
    page with a button, since mail scanners open links by themselves."""
    account = sender.account_for_sender_token(token)
    if account is None:
        return render_template("accounts/confirm_sender.html", account=None), 404
    form = EmptyForm()
    if form.validate_on_submit():
        address = sender.confirm_sender_address(account, ip=request.remote_addr)
        db.session.commit()
        return render_template(
            "accounts/confirm_sender.html", account=account, confirmed=address, form=form
        )
    return render_template(
        "accounts/confirm_sender.html",
        account=account,
        address=account.sender_email_pending,
        confirmed=None,
        form=form,
    )


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    invitation = service.invitation_for_token(token)
    if invitation is None:
        flash(_("This invitation is invalid or has expired."), "danger")
        return redirect(url_for("accounts.login"))
    existing = service.find_user_by_email(invitation.email)
    if existing is not None and existing.password_hash:
        if not current_user.is_authenticated:
            flash(
                _("Please sign in as %(email)s to accept the invitation.", email=invitation.email),
                "info",
            )
            return redirect(url_for("accounts.login", next=request.path))
        if request.method == "POST" and EmptyForm().validate_on_submit():
            try:
                service.accept_invitation(invitation, current_user)
            except service.ServiceError as exc:
                flash(str(exc), "danger")
                return redirect(url_for("accounts.index"))
            db.session.commit()
            return redirect(url_for("account.home", account_slug=invitation.account.slug))
        return render_template(
            "accounts/accept_invitation.html",
            invitation=invitation,
            form=EmptyForm(),
            needs_password=False,
        )
    form = forms.AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            user = existing or service.create_user(invitation.email, None)
            service.set_name(user, form.name.data)
            service.set_password(user, form.password.data)
            service.accept_invitation(invitation, user)
        except service.ServiceError as exc:
            form.password.errors.append(str(exc))
        else:
            _sign_in(user, remember=False)
            db.session.commit()
            return redirect(url_for("account.home", account_slug=invitation.account.slug))
    return render_template(
        "accounts/accept_invitation.html", invitation=invitation, form=form, needs_password=True
    )


@bp.route("/accounts")
@login_required
def choose_account():
    return render_template("accounts/choose_account.html", accounts=user_accounts(current_user))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = forms.ProfileForm(obj=current_user)
    if request.method == "GET":
        form.locale.data = current_user.locale or ""
        form.timezone.data = current_user.timezone or ""
    if form.validate_on_submit():
        service.update_profile(
            current_user, name=form.name.data, locale=form.locale.data, timezone=form.timezone.data
        )

        if form.locale.data:
            session["lang"] = form.locale.data
        else:
            session.pop("lang", None)
        db.session.commit()
        flash(_("Your profile has been saved."), "success")
        return redirect(url_for("accounts.profile"))
    return render_template("accounts/profile.html", form=form, security_form=EmptyForm())


@bp.route("/profile/password", methods=["GET", "POST"])
@login_required
@limiter.limit(_login_limit, methods=["POST"])
def change_password():
    form = forms.ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()  # login_user must not get the proxy
        remembered = service.login_is_remembered(session.get("_user_id"))
        try:
            service.change_password(
                user,
                form.current_password.data,
                form.password.data,
                ip=request.remote_addr,
            )
        except service.ServiceError as exc:
            db.session.rollback()
            form.current_password.errors.append(str(exc))
        else:
            _sign_in(user, remember=remembered)  # this browser stays, the others end
            db.session.commit()
            flash(
                _("Your password has been changed. Every other device has been signed out."),
                "success",
            )
            return redirect(url_for("accounts.profile"))
    return render_template("accounts/change_password.html", form=form)


@bp.route("/profile/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    if EmptyForm().validate_on_submit():
        service.sign_out_everywhere(current_user, ip=request.remote_addr)
        db.session.commit()
        logout_user()
        flash(_("You have been signed out on every device."), "info")
        return redirect(url_for("accounts.login"))
    return redirect(url_for("accounts.profile"))


# --- inside an account -------------------------------------------------------


@account_bp.route("/")
def home():
    """The account at a glance (issue 17, point 14): every figure is read through the
    service of its area, each one links to its page."""
    return render_template(
        "accounts/home.html", members=service.members(g.account), **_overview(g.account)
    )


HOME_PANELS_KEY = "portal.home_panels"
HomePanel = Callable[[Account, datetime], dict[str, Any]]


def add_home_panel(app: Flask, panel: HomePanel) -> None:
    """What an area shows on the account's home page, added by its init_app: the area's
    figures, read through its own service, as template values. (The areas sit above
    this one and import it; the home page must not import them.)"""
    app.extensions.setdefault(HOME_PANELS_KEY, []).append(panel)


def _overview(account: Account) -> dict[str, Any]:
    now = clock.now()
    values: dict[str, Any] = {
        "now": now,
        "age": lambda moment: format_timedelta(moment - now, add_direction=True),
        "staff_accesses": audit.open_staff_accesses(account, now),
    }
    for panel in current_app.extensions.get(HOME_PANELS_KEY, []):
        values.update(panel(account, now))
    return values


@account_bp.route("/settings", methods=["GET", "POST"])
def settings():
    form = forms.GeneralSettingsForm(obj=g.account)
    editable = can(Role.ADMIN)
    refused = False
    if request.method == "POST":
        if not editable:
            abort(403)
        if form.validate_on_submit():
            try:
                changed = service.update_account_settings(
                    g.account,
                    actor=current_user,
                    ip=request.remote_addr,
                    name=form.name.data,
                    timezone=form.timezone.data,
                    default_locale=form.default_locale.data,
                    automatic_backups=form.automatic_backups.data,
                )
            except service.ServiceError as exc:
                db.session.rollback()
                form.name.errors.append(str(exc))
                refused = True  # a name with a line break: refused, nothing changed
            else:
                db.session.commit()
                if changed:
                    flash(_("The settings have been saved."), "success")
                return redirect(url_for("account.settings"))
    return _settings_page(form, forms.SenderAddressForm(), editable), (422 if refused else 200)


def _settings_page(form, sender_form, editable: bool) -> str:
    return render_template(
        "accounts/settings.html",
        form=form,
        sender_form=sender_form,
        default_sender=sender.default_sender_address(),
        editable=editable,
        recent=audit.recent_for_account(g.account, limit=10),
    )


@account_bp.route("/settings/sender", methods=["POST"])
@require_role(Role.ADMIN)
def sender_address():
    """A new sender address is only used once the mail to it was answered; until then the
    current one (or the portal's) keeps sending."""
    sender_form = forms.SenderAddressForm()
    if sender_form.validate_on_submit():
        try:
            address = sender.request_sender_address(
                g.account,
                sender_form.email.data,
                actor=current_user,
                locale=i18n.current_language(),
                ip=request.remote_addr,
            )
        except service.ServiceError as exc:
            db.session.rollback()
            sender_form.email.errors.append(str(exc))
        else:
            db.session.commit()
            flash(
                _(
                    "A confirmation link has been sent to %(email)s. The address is used "
                    "once the link has been opened.",
                    email=address,
                ),
                "info",
            )
            return redirect(url_for("account.settings") + "#sender")
    form = forms.GeneralSettingsForm(obj=g.account)
    return _settings_page(form, sender_form, True), 422


@account_bp.route("/settings/sender/remove", methods=["POST"])
@require_role(Role.ADMIN)
def remove_sender_address():
    if EmptyForm().validate_on_submit():
        sender.remove_sender_address(g.account, actor=current_user, ip=request.remote_addr)
        db.session.commit()
        flash(_("Mails to contacts come from the portal's address again."), "info")
    return redirect(url_for("account.settings") + "#sender")


@account_bp.route("/settings/team", methods=["GET", "POST"])
def team():
    invite_form = forms.InviteForm()
    manage = can(Role.ADMIN)
    if request.method == "POST":
        if not manage:
            abort(403)
        if invite_form.validate_on_submit():
            try:
                service.invite_member(
                    g.account,
                    invite_form.email.data,
                    invite_form.role.data,
                    actor=current_user,
                    actor_membership=g.membership,
                )
            except service.ServiceError as exc:
                invite_form.email.errors.append(str(exc))
            else:
                db.session.commit()
                flash(
                    _("The invitation has been sent to %(email)s.", email=invite_form.email.data),
                    "success",
                )
                return redirect(url_for("account.team"))
    return render_template(
        "accounts/team.html",
        invite_form=invite_form,
        manage=manage,
        members=service.members(g.account),
        invitations=service.pending_invitations(g.account),
        remove_form=EmptyForm(),
        role_labels=forms.ROLE_LABELS,
    )


def _member_or_404(membership_id: int):
    membership = service.get_membership(g.account, membership_id)
    if membership is None:
        abort(404)
    return membership


@account_bp.route("/settings/team/<int:membership_id>/role", methods=["POST"])
@require_role(Role.ADMIN)
def change_role(membership_id: int):
    membership = _member_or_404(membership_id)
    form = forms.RoleForm()
    if form.validate_on_submit():
        try:
            service.change_role(
                membership, form.role.data, actor=current_user, actor_membership=g.membership
            )
        except service.ServiceError as exc:
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(_("The role has been changed."), "success")
    return redirect(url_for("account.team"))


@account_bp.route("/settings/team/<int:membership_id>/remove", methods=["POST"])
@require_role(Role.ADMIN)
def remove_member(membership_id: int):
    membership = _member_or_404(membership_id)
    if EmptyForm().validate_on_submit():
        try:
            service.remove_member(membership, actor=current_user, actor_membership=g.membership)
        except service.ServiceError as exc:
            flash(str(exc), "danger")
        else:
            db.session.commit()
            flash(_("The member has been removed."), "success")
    return redirect(url_for("account.team"))
