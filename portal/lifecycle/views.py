"""Pages of the lifecycle area: delete / restore / forget on the card and in the list,
mass management, and the public sign-up form with its confirmation link.

Viewers read only; deleting, restoring and forgetting need an editor (or admin, owner).
The sign-up form is public: rate-limited per IP, a honeypot, a signed form key instead of
the session-bound CSRF token (it must work inside the customer's iframe, where our
cookie is not sent) plus a check that the POST comes from our own origin."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, format_time, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal import i18n
from portal.accounts.models import Account, Role
from portal.contacts import queries
from portal.contacts import service as contacts
from portal.contacts.forms import STATUS_LABELS, ContactFilterForm
from portal.contacts.models import Contact, Group, Tag
from portal.contacts.queries import BulkSelection, ContactFilter
from portal.contacts.views import Action
from portal.core.errors import ServiceError
from portal.core.forms import EmptyForm
from portal.extensions import csrf, db, limiter
from portal.lifecycle import forms, mass, service, signup, tasks
from portal.lifecycle.models import LifecycleAction, LifecycleJob
from portal.tenancy import get_owned_or_404, owned, require_role, tenant_blueprint

bp = tenant_blueprint("lifecycle", __name__)
signup_bp = Blueprint("signup", __name__, url_prefix="/f")

INLINE_LIMIT = 1000  # a selection up to this size is done at once, larger ones by a job


# --- the card -------------------------------------------------------------------------


def purge_window_text(window: tuple[datetime, datetime], account_zone: str) -> str:
    """A purge window as its account lives it ("05/12/2026, 02:00 – 04:00 Europe/Berlin"),
    and in the reader's own zone beside it when that is another one: staff in London
    and an owner in Berlin read the same night."""
    start, end = window
    account_tz = ZoneInfo(account_zone)
    locale = get_locale()
    # no words to translate: dates, times and a zone's name
    text = "{} – {} {}".format(
        babel_dates.format_datetime(start, "short", tzinfo=account_tz, locale=locale),
        babel_dates.format_time(end, "short", tzinfo=account_tz, locale=locale),
        account_zone,
    )
    reader = i18n.current_timezone()
    if reader.key != account_zone:
        text += " " + _(
            "(%(start)s – %(end)s your time, %(timezone)s)",
            start=format_datetime(start, "short"),
            end=format_time(end, "short"),
            timezone=reader.key,
        )
    return text


def purge_text(contact: Contact) -> str:
    """When a contact "to be deleted" goes for good: in the account's night."""
    window = service.purge_time(contact, g.account)
    if window is None:
        return ""
    return _(
        "It will be removed for good in the account's night: %(window)s. Until then it "
        "can be restored.",
        window=purge_window_text(window, g.account.timezone),
    )


@bp.route("/contacts/<int:contact_id>/delete", methods=["POST"])
@require_role(Role.EDITOR)
def delete_contact(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    if EmptyForm().validate_on_submit() and service.delete_contacts(
        g.account, [contact.id], actor=current_user, source="ui", ip=request.remote_addr
    ):
        db.session.commit()
        flash(_("The contact is marked “to be deleted”.") + " " + purge_text(contact), "warning")
    return redirect(url_for("contacts.view_contact", contact_id=contact.id))


@bp.route("/contacts/<int:contact_id>/restore", methods=["POST"])
@require_role(Role.EDITOR)
def restore_contact(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    if EmptyForm().validate_on_submit() and service.undelete_contacts(
        g.account, [contact.id], actor=current_user, source="ui", ip=request.remote_addr
    ):
        db.session.commit()
        flash(_("The contact has been restored, with its groups and tags."), "success")
    return redirect(url_for("contacts.view_contact", contact_id=contact.id))


@bp.route("/contacts/<int:contact_id>/forget", methods=["GET", "POST"])
@require_role(Role.EDITOR)
def forget_contact(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    form = forms.ForgetForm()
    if form.validate_on_submit():
        receipt = service.forget_contact(
            contact, actor=current_user, source="ui", ip=request.remote_addr
        )
        db.session.commit()
        flash(
            ngettext(
                "The contact has been erased for good (%(num)d record). Its address is "
                "blocked for imports and restores; the person can sign up again through "
                "a sign-up form.",
                "The contact has been erased for good (%(num)d records). Its address is "
                "blocked for imports and restores; the person can sign up again through "
                "a sign-up form.",
                receipt.records,
            ),
            "success",
        )
        return redirect(url_for("contacts.list_contacts"))
    return render_template(
        "lifecycle/forget.html",
        contact=contact,
        form=form,
        preview=service.erasure_preview(contact),
        subscriptions=queries.contact_subscriptions(contact),
    )


def card_extras(contact: Contact) -> dict:
    """The card of a contact "to be deleted" says when the purge removes it."""
    return {"purge_text": purge_text(contact)} if contact.is_deleted else {}


# --- the list: bulk actions on a selection --------------------------------------------


def _bulk(action: LifecycleAction):
    if not EmptyForm().validate_on_submit():
        abort(400)
    selection = BulkSelection.from_form(request.form)
    back = request.referrer or url_for("contacts.list_contacts")
    if urlsplit(back).netloc not in ("", request.host):
        back = url_for("contacts.list_contacts")
    if selection.scope == "matching":
        job = mass.draft_for_filter(
            g.account,
            action,
            selection.filter,
            tz=i18n.current_timezone(),
            actor=current_user,
            ip=request.remote_addr,
            source="ui",
        )
        db.session.commit()
        return redirect(url_for("lifecycle.show_job", job_id=job.id))
    ids = [i for batch in selection.iter_ids(g.account) for i in batch]
    if not ids:
        flash(_("Please select at least one contact."), "warning")
        return redirect(back)
    apply = (
        service.delete_contacts if action == LifecycleAction.DELETE else service.undelete_contacts
    )
    changed = apply(
        g.account, ids[:INLINE_LIMIT], actor=current_user, source="ui", ip=request.remote_addr
    )
    db.session.commit()
    if action == LifecycleAction.DELETE:
        message = ngettext(
            "%(num)d contact is marked “to be deleted”; it can be restored until the "
            "nightly purge.",
            "%(num)d contacts are marked “to be deleted”; they can be restored until the "
            "nightly purge.",
            changed,
        )
    else:
        message = ngettext("%(num)d contact restored.", "%(num)d contacts restored.", changed)
    flash(message, "success" if changed else "info")
    return redirect(back)


@bp.route("/contacts/bulk/delete", methods=["POST"])
@require_role(Role.EDITOR)
def delete_selected():
    return _bulk(LifecycleAction.DELETE)


@bp.route("/contacts/bulk/restore", methods=["POST"])
@require_role(Role.EDITOR)
def restore_selected():
    return _bulk(LifecycleAction.RESTORE)


# --- mass management -----------------------------------------------------------------


def describe_filter(f: ContactFilter) -> list[str]:
    """The filter in words, for the confirmation page."""
    parts = []
    if f.group_id:
        group = owned(Group, f.group_id)
        parts.append(_("Group: %(name)s", name=group.name if group else "?"))
    if f.status:
        parts.append(_("Status: %(status)s", status=STATUS_LABELS[f.status]))
    if f.tag_id:
        tag = owned(Tag, f.tag_id)
        parts.append(_("Tag: %(name)s", name=tag.name if tag else "?"))
    if f.signup_from:
        parts.append(_("Signed up from %(date)s", date=f.signup_from.isoformat()))
    if f.signup_to:
        parts.append(_("Signed up until %(date)s", date=f.signup_to.isoformat()))
    if f.q:
        parts.append(_("Search: %(q)s", q=f.q))
    return parts or [_("All contacts of the account")]


def _render_manage(filter_form, list_form, status: int = 200):
    tz = i18n.current_timezone()
    f = filter_form.to_filter() if filter_form.validate() else ContactFilter()
    count, _capped = queries.count_contacts(g.account, f, tz=tz)
    return (
        render_template(
            "lifecycle/manage.html",
            filter_form=filter_form,
            filter=f,
            count=count,
            capped=_capped,
            mass_filter_form=forms.MassFilterForm(formdata=None, filter=f.query_string()),
            list_form=list_form,
            recent=mass.recent_jobs(g.account),
            action_labels=forms.ACTION_LABELS,
        ),
        status,
    )


def _filter_form():
    form = ContactFilterForm(request.args)
    form.set_choices(queries.groups_of(g.account), queries.tags_of(g.account))
    return form


@bp.route("/contacts/manage")
@require_role(Role.EDITOR)
def manage():
    return _render_manage(_filter_form(), forms.MassListForm(formdata=None))


@bp.route("/contacts/manage/filter", methods=["POST"])
@require_role(Role.EDITOR)
def manage_by_filter():
    form = forms.MassFilterForm()
    if not form.validate_on_submit():
        abort(400)
    f = ContactFilter.from_args(dict(parse_qsl(form.filter.data or "")))
    job = mass.draft_for_filter(
        g.account,
        LifecycleAction(form.action.data),
        f,
        tz=i18n.current_timezone(),
        actor=current_user,
        ip=request.remote_addr,
        source="ui",
    )
    db.session.commit()
    return redirect(url_for("lifecycle.show_job", job_id=job.id))


@bp.route("/contacts/manage/list", methods=["POST"])
@require_role(Role.EDITOR)
def manage_by_list():
    form = forms.MassListForm()
    if form.validate_on_submit():
        upload = request.files.get("file")
        try:
            if upload and upload.filename:
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / "list"
                    upload.save(path)
                    emails = mass.parse_upload(path, upload.filename)
            else:
                emails = mass.parse_pasted(form.emails.data or "")
        except mass.MassActionRefused as exc:
            form.file.errors = [str(exc)]
        else:
            if emails.emails:
                job = mass.draft_for_emails(
                    g.account,
                    LifecycleAction(form.action.data),
                    emails,
                    actor=current_user,
                    ip=request.remote_addr,
                    source="ui",
                )
                db.session.commit()
                return redirect(url_for("lifecycle.show_job", job_id=job.id))
            message = _("The list holds no usable email address.")
            if emails.problem_count:
                first = emails.problems[0]
                message += " " + _(
                    "Line %(line)d: %(problem)s",
                    line=first["line"],
                    problem=mass.list_problem_text(first),
                )
            form.emails.errors = [message]
    return _render_manage(_filter_form(), form, status=422)


def _job_or_404(job_id: int) -> LifecycleJob:
    job = mass.get_job(g.account, job_id)
    if job is None:
        abort(404)
    return job


@bp.route("/contacts/manage/<int:job_id>")
@require_role(Role.EDITOR)
def show_job(job_id: int):
    job = _job_or_404(job_id)
    selection = job.selection or {}
    f = None
    if selection.get("scope") == "filter":
        f = ContactFilter.from_args(dict(parse_qsl(selection.get("filter") or "")))
    return render_template(
        "lifecycle/job.html",
        job=job,
        filter_parts=describe_filter(f) if f is not None else [],
        progress=mass.progress(job),
        can_resume=mass.can_resume(job),
        confirm_form=forms.ConfirmMassForm(formdata=None),
        action_labels=forms.ACTION_LABELS,
        list_problem_text=mass.list_problem_text,
    )


@bp.route("/contacts/manage/<int:job_id>/confirm", methods=["POST"])
@require_role(Role.EDITOR)
def confirm_job(job_id: int):
    job = _job_or_404(job_id)
    form = forms.ConfirmMassForm()
    if not form.validate_on_submit():
        abort(400)
    if job.action == LifecycleAction.FORGET.value and not form.understood.data:
        flash(_("Please confirm that these contacts shall be erased for good."), "danger")
        return redirect(url_for("lifecycle.show_job", job_id=job.id))
    try:
        mass.confirm(job)
    except ServiceError as exc:
        flash(str(exc), "warning")
        return redirect(url_for("lifecycle.show_job", job_id=job.id))
    tasks.enqueue(job)
    return redirect(url_for("lifecycle.show_job", job_id=job.id))


@bp.route("/contacts/manage/<int:job_id>/cancel", methods=["POST"])
@require_role(Role.EDITOR)
def cancel_job(job_id: int):
    job = _job_or_404(job_id)
    if EmptyForm().validate_on_submit() and mass.cancel_draft(
        job, actor=current_user, ip=request.remote_addr
    ):
        db.session.commit()
        flash(_("Nothing has been changed."), "info")
    return redirect(url_for("lifecycle.manage"))


@bp.route("/contacts/manage/<int:job_id>/resume", methods=["POST"])
@require_role(Role.EDITOR)
def resume_job(job_id: int):
    job = _job_or_404(job_id)
    if EmptyForm().validate_on_submit() and mass.can_resume(job):
        tasks.enqueue(job)
        flash(_("The action continues where it stopped."), "info")
    return redirect(url_for("lifecycle.show_job", job_id=job.id))


@bp.route("/contacts/manage/<int:job_id>/status")
@require_role(Role.EDITOR)
def job_status(job_id: int):
    return jsonify(mass.progress(_job_or_404(job_id)))


# --- the group's form link ---------------------------------------------------------------


@bp.route("/groups/<int:group_id>/form-link", methods=["POST"])
@require_role(Role.EDITOR)
def renew_form_link(group_id: int):
    group = get_owned_or_404(Group, group_id)
    if EmptyForm().validate_on_submit():
        signup.new_form_link(group, actor=current_user, ip=request.remote_addr)
        db.session.commit()
        flash(_("The sign-up form has a new address; the old one no longer works."), "success")
    return redirect(url_for("contacts.group_settings", group_id=group.id, _anchor="signup-form"))


@bp.app_context_processor
def _signup_helpers():
    return {"signup_form_url": signup.form_url, "signup_snippet": signup.embed_snippet}


# --- the public sign-up form ------------------------------------------------------------


def _form_keys() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="signup-form")


FORM_KEY_MAX_AGE = 24 * 3600


def _from_our_origin() -> bool:
    """A POST from another site carries its Origin (or Referer); ours, or none, passes."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return True
    return urlsplit(origin).netloc == request.host


def _public_group(form_token: str) -> Group:
    group = signup.group_for_form(form_token)
    if group is None:
        abort(404)
    # the account's default language when the browser names none of ours (see i18n)
    g.public_account = db.session.get(Account, group.account_id)
    return group


def _signup_limit() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


@signup_bp.route("/<form_token>", methods=["GET", "POST"])
@csrf.exempt
@limiter.limit(_signup_limit, methods=["POST"])
def form(form_token: str):
    group = _public_group(form_token)
    embed = request.args.get("embed") == "1"
    signup_form = forms.SignupForm()
    if request.method == "POST":
        valid_key = True
        try:
            key = _form_keys().loads(signup_form.form_key.data or "", max_age=FORM_KEY_MAX_AGE)
            valid_key = key == group.signup_token
        except BadSignature:
            valid_key = False
        if not valid_key or not _from_our_origin():
            return _render_signup(group, signup_form, embed, expired=True, status=400)
        if signup_form.validate():
            if signup_form.website.data:  # a bot filled in the honeypot
                return _render_signup(group, signup_form, embed, sent=True)
            try:
                signup.request_signup(
                    group,
                    signup_form.email.data,
                    first_name=signup_form.first_name.data or "",
                    last_name=signup_form.last_name.data or "",
                    ip=request.remote_addr,
                    locale=i18n.current_language(),
                )
            except ServiceError as exc:
                signup_form.email.errors = [str(exc)]
            else:
                db.session.commit()
                return _render_signup(group, signup_form, embed, sent=True)
        return _render_signup(group, signup_form, embed, status=422)
    return _render_signup(group, signup_form, embed)


def _render_signup(group, signup_form, embed, *, sent=False, expired=False, status=200):
    signup_form.form_key.data = _form_keys().dumps(group.signup_token)
    response = current_app.make_response(
        (
            render_template(
                "lifecycle/signup.html",
                group=group,
                form=signup_form,
                embed=embed,
                sent=sent,
                expired=expired,
            ),
            status,
        )
    )
    # the form is made to be embedded on the customer's own website
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors *; form-action 'self'; base-uri 'self'"
    )
    g.frameable = True
    return response


@signup_bp.route("/<form_token>/confirm/<token>")
def confirm(form_token: str, token: str):
    """Two links for one new address opened at once (two groups' forms, or the API adding
    the address meanwhile) race to create the contact; the loser runs again and finds
    the winner's contact — the person sees the confirmation, not a server error."""

    def confirm_and_commit() -> signup.Confirmation:
        result = signup.confirm_signup(form_token, token, ip=request.remote_addr)
        db.session.commit()
        return result

    try:
        result = contacts.run_again_on_lost_race(confirm_and_commit, attempts=CONFIRM_ATTEMPTS)
    except signup.SignupAlreadyConfirmed as done:
        db.session.rollback()
        return render_template(
            "lifecycle/confirmed.html", error=None, group=done.group, already=True
        )
    except ServiceError as exc:
        db.session.commit()  # an expired request is removed
        return render_template("lifecycle/confirmed.html", error=str(exc), group=None), 410
    return render_template("lifecycle/confirmed.html", error=None, group=result.group)


CONFIRM_ATTEMPTS = 2


# --- buttons in the contacts area (added by the area's init_app) ---------------------------

CARD_ACTIONS = (
    Action(
        "lifecycle.delete_contact",
        _l("Delete"),
        style="outline-danger",
        show=lambda c: not c.is_deleted,
    ),
    Action(
        "lifecycle.restore_contact",
        _l("Restore"),
        style="success",
        show=lambda c: c.is_deleted,
    ),
    Action("lifecycle.forget_contact", _l("Forget me"), style="danger", method="get"),
)
BULK_ACTIONS = (
    Action("lifecycle.delete_selected", _l("Delete"), style="outline-danger"),
    Action("lifecycle.restore_selected", _l("Restore"), style="outline-success"),
)


# --- the account's home page (added by the area's init_app) ------------------------------


def home_panel(account: Account, now: datetime) -> dict[str, Any]:
    """The next nightly purge: when, and how many contacts it will remove."""
    outlook = service.next_purge(account, now)
    return {
        "purge": outlook,
        "purge_window": purge_window_text((outlook.start, outlook.end), account.timezone),
    }
