"""Contact list, contact card, groups and group settings, under /a/<account>/.

Viewers read; editors change contacts, tags and groups; admins and owners change a
group's settings (its "Automatic backups" switch). Later areas add buttons to the list
and the card with add_actions() in their init_app (the lifecycle area: delete, restore,
forget me)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import i18n
from portal.accounts.models import Account, Role
from portal.contacts import counts as contact_counts
from portal.contacts import fields as contact_fields
from portal.contacts import forms, queries, service
from portal.contacts.models import Contact, Group, Tag
from portal.contacts.queries import ContactFilter, ContactSort
from portal.core import signals
from portal.core.forms import EmptyForm
from portal.extensions import db
from portal.tenancy import can, get_owned_or_404, id_or_none, require_role, tenant_blueprint

bp = tenant_blueprint("contacts", __name__)


@dataclass(frozen=True)
class Action:
    """A button another area adds: `endpoint` receives a POST (the list's bulk form,
    or an EmptyForm on the card with contact_id in the URL)."""

    endpoint: str
    label: Any  # a lazy string
    role: Role = Role.EDITOR
    style: str = "outline-secondary"
    show: Any = None  # card only: callable(contact) -> bool
    method: str = "post"  # card only: "get" links to a page (e.g. a confirmation) instead


@dataclass
class ContactActions:
    """What other areas add to the contacts pages, per app (app.extensions[ACTIONS_KEY])."""

    # e.g. Action("lifecycle.delete_selected", _l("Delete"), ...) on the list's selection
    bulk: list[Action] = field(default_factory=list)
    # e.g. Action("lifecycle.delete_contact", _l("Delete"), show=lambda c: not c.is_deleted)
    card: list[Action] = field(default_factory=list)
    # callables(contact) -> dict of extra template values for the card (e.g. the purge time)
    card_extras: list[Callable[[Contact], dict]] = field(default_factory=list)


ACTIONS_KEY = "portal.contact_actions"


def add_actions(
    app: Flask,
    *,
    bulk: Iterable[Action] = (),
    card: Iterable[Action] = (),
    card_extras: Iterable[Callable[[Contact], dict]] = (),
) -> None:
    """Buttons another area adds to the list and the card; called by its init_app."""
    actions = app.extensions.setdefault(ACTIONS_KEY, ContactActions())
    actions.bulk.extend(bulk)
    actions.card.extend(card)
    actions.card_extras.extend(card_extras)


def _actions() -> ContactActions:
    return current_app.extensions.get(ACTIONS_KEY) or ContactActions()


def _int_arg(name: str) -> int | None:
    """A contact id from the query string (the page cursor), or None for anything no
    contact id can be (a number past BIGINT reached the database before: a 500)."""
    return id_or_none(Contact, request.args.get(name))


def _sort() -> ContactSort:
    return ContactSort.from_args(request.args)


def _first_row() -> int:
    """The position of the page's first row, carried in the page links (`start`): the
    keyset cursor knows where the page is, not how many rows lie before it."""
    try:
        return max(1, min(int(request.args.get("start") or 1), 10**9))
    except ValueError:
        return 1


def _page_urls(endpoint: str, page, base_args: dict, first: int, **view_args) -> dict:
    """First / previous / next page links, keeping the filter and the sort."""
    urls = {"first": None, "prev": None, "next": None}
    if first > 1:
        urls["first"] = url_for(endpoint, **view_args, **base_args)
    if page.prev_before:
        urls["prev"] = url_for(
            endpoint,
            **view_args,
            **base_args,
            before=page.prev_before,
            start=max(1, first - queries.PAGE_SIZE),
        )
    if page.next_after:
        urls["next"] = url_for(
            endpoint,
            **view_args,
            **base_args,
            after=page.next_after,
            start=first + len(page.contacts),
        )
    return urls


def _sort_urls(endpoint: str, sort: ContactSort, filter_args: dict, **view_args) -> dict:
    """A column header's link: the same filter, sorted by that column (the other way
    round when it is sorted by it already), from the first page."""
    return {
        key: url_for(endpoint, **view_args, **filter_args, **sort.toggled(key).to_args())
        for key in queries.SORT_KEYS
    }


def _contacts_listing(f: ContactFilter, endpoint: str, link_filter=None, **view_args) -> dict:
    """The table's values. `link_filter` is the filter the page's links carry (the
    group page keeps the group in its path, not in the query string)."""
    tz = i18n.current_timezone()
    sort = _sort()
    # a search is counted further (exact up to queries.few_matches): the count also
    # decides how the page is read (see queries._Segment.ordered)
    cap = queries.few_matches(sort) if f.q else queries.COUNT_CAP
    count, capped = queries.count_contacts(g.account, f, cap=cap, tz=tz)
    page = queries.page_contacts(
        g.account,
        f,
        after=_int_arg("after"),
        before=_int_arg("before"),
        tz=tz,
        sort=sort,
        matches=None if capped else count,
    )
    first = 1 if page.at_start else _first_row()
    last = first + len(page.contacts) - 1
    if not capped and last > count:  # a stale `start` (rows removed meanwhile)
        first, last = max(1, count - len(page.contacts) + 1), count
    filter_args = (link_filter or f).to_args()
    return {
        "page": page,
        "count": count,
        "capped": capped,
        "filter": f,
        "sort": sort,
        "sort_args": sort.to_args(),
        "first_row": first,
        "last_row": last,
        "page_urls": _page_urls(
            endpoint, page, {**filter_args, **sort.to_args()}, first, **view_args
        ),
        "sort_urls": _sort_urls(endpoint, sort, filter_args, **view_args),
        "bulk_actions": [a for a in _actions().bulk if a.endpoint in _endpoints() and can(a.role)],
        "bulk_form": EmptyForm(),
        "status_labels": forms.STATUS_LABELS,
    }


def _endpoints():
    return current_app.view_functions


# --- contact list ---------------------------------------------------------------


@bp.route("/contacts")
def list_contacts():
    groups = queries.groups_of(g.account)
    tags = queries.tags_of(g.account)
    form = forms.ContactFilterForm(request.args)
    form.set_choices(groups, tags)
    f = form.to_filter() if form.validate() else ContactFilter()
    return render_template(
        "contacts/list.html",
        form=form,
        groups={grp.id: grp for grp in groups},
        **_contacts_listing(f, "contacts.list_contacts"),
    )


# --- contact card ------------------------------------------------------------------


def _render_card(contact: Contact, form, tag_form=None, status: int = 200):
    definitions = contact_fields.custom_fields(g.account)
    known = {d.key for d in definitions}
    extras: dict[str, Any] = {}
    for extras_of in _actions().card_extras:
        extras.update(extras_of(contact))
    return (
        render_template(
            "contacts/card.html",
            contact=contact,
            form=form,
            tag_form=tag_form or forms.TagForm(formdata=None),
            definitions=definitions,
            other_values=sorted(
                (k, v) for k, v in (contact.fields or {}).items() if k not in known
            ),
            subscriptions=queries.contact_subscriptions(contact),
            activities=queries.activities_of(contact),
            editable=can(Role.EDITOR),
            card_actions=[
                a
                for a in _actions().card
                if a.endpoint in _endpoints()
                and can(a.role)
                and (a.show is None or a.show(contact))
            ],
            action_form=EmptyForm(),
            status_labels=forms.STATUS_LABELS,
            optout_labels=forms.OPTOUT_LABELS,
            activity_labels=forms.ACTIVITY_LABELS,
            field_type_labels=forms.FIELD_TYPE_LABELS,
            **extras,
        ),
        status,
    )


@bp.route("/contacts/<int:contact_id>")
def view_contact(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    form = forms.contact_form(contact_fields.custom_fields(g.account), contact, formdata=None)
    return _render_card(contact, form)


@bp.route("/contacts/<int:contact_id>/edit", methods=["POST"])
@require_role(Role.EDITOR)
def edit_contact(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    form = forms.contact_form(contact_fields.custom_fields(g.account), contact)
    if form.validate_on_submit():
        try:
            changed = service.update_contact(
                contact,
                actor=current_user,
                source="ui",
                email=form.email.data,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
                fields=form.custom_values(),
                ip=request.remote_addr,
            )
        except service.ContactInvalid as exc:
            db.session.rollback()
            for key, message in exc.errors.items():
                target = form.field_for(key) or form.email
                target.errors = [*target.errors, str(message)]
        else:
            db.session.commit()
            if changed:
                flash(_("The contact has been saved."), "success")
            return redirect(url_for("contacts.view_contact", contact_id=contact.id))
    flash(_("Please correct the marked fields."), "danger")
    return _render_card(contact, form, status=200)


@bp.route("/contacts/<int:contact_id>/tags", methods=["POST"])
@require_role(Role.EDITOR)
def add_tag(contact_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    tag_form = forms.TagForm()
    if tag_form.validate_on_submit():
        try:
            tag = service.add_tag(contact, tag_form.name.data, actor=current_user, source="ui")
        except service.ServiceError as exc:
            tag_form.name.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("Tag “%(name)s” added.", name=tag.name), "success")
            return redirect(url_for("contacts.view_contact", contact_id=contact.id, _anchor="tags"))
    form = forms.contact_form(contact_fields.custom_fields(g.account), contact, formdata=None)
    return _render_card(contact, form, tag_form=tag_form)


@bp.route("/contacts/<int:contact_id>/tags/<int:tag_id>/remove", methods=["POST"])
@require_role(Role.EDITOR)
def remove_tag(contact_id: int, tag_id: int):
    contact = get_owned_or_404(Contact, contact_id)
    tag = get_owned_or_404(Tag, tag_id)
    if EmptyForm().validate_on_submit() and service.remove_tag(
        contact, tag, actor=current_user, source="ui"
    ):
        db.session.commit()
        flash(_("Tag “%(name)s” removed.", name=tag.name), "success")
    return redirect(url_for("contacts.view_contact", contact_id=contact.id, _anchor="tags"))


# --- groups ----------------------------------------------------------------------------


def _render_groups(create_form, status: int = 200):
    groups = queries.groups_of(g.account)
    return (
        render_template(
            "contacts/groups.html",
            groups=groups,
            counts=contact_counts.group_counts(g.account, [grp.id for grp in groups]),
            create_form=create_form,
            editable=can(Role.EDITOR),
        ),
        status,
    )


@bp.route("/groups")
def list_groups():
    return _render_groups(forms.GroupNameForm(formdata=None))


@bp.route("/groups/new", methods=["POST"])
@require_role(Role.EDITOR)
def create_group():
    form = forms.GroupNameForm()
    if form.validate_on_submit():
        try:
            group = service.create_group(
                g.account, form.name.data, actor=current_user, source="ui", ip=request.remote_addr
            )
        except service.ServiceError as exc:
            form.name.errors = [str(exc)]
        else:
            db.session.commit()
            flash(_("The group “%(name)s” has been created.", name=group.name), "success")
            return redirect(url_for("contacts.view_group", group_id=group.id))
    return _render_groups(form)


@bp.route("/groups/<int:group_id>")
def view_group(group_id: int):
    group = get_owned_or_404(Group, group_id)
    status = request.args.get("status") or ""
    f = ContactFilter(
        group_id=group.id,
        status=status if status in queries.STATUS_FILTERS else "",
        q=(request.args.get("q") or "").strip()[:200],
    )
    # the page's own links carry no group= (it is in the path)
    listing = _contacts_listing(
        f, "contacts.view_group", link_filter=f.with_(group_id=None), group_id=group.id
    )
    return render_template(
        "contacts/group.html",
        group=group,
        counts=contact_counts.group_counts(g.account, [group.id])[group.id],
        **listing,
    )


def _render_group_settings(group: Group, *, rename_form=None, settings_form=None, delete_form=None):
    settings_form = settings_form or forms.GroupSettingsForm(formdata=None, obj=group)
    return render_template(
        "contacts/group_settings.html",
        group=group,
        rename_form=rename_form or forms.GroupNameForm(formdata=None, obj=group),
        settings_form=settings_form,
        delete_form=delete_form or forms.DeleteGroupForm(formdata=None),
        can_edit=can(Role.EDITOR),
        can_configure=can(Role.ADMIN),
        backup_hook=bool(signals.before_group_delete.receivers),
        counts=contact_counts.group_counts(g.account, [group.id])[group.id],
        recent=queries.group_events(group, limit=10),
    )


@bp.route("/groups/<int:group_id>/settings", methods=["GET", "POST"])
def group_settings(group_id: int):
    group = get_owned_or_404(Group, group_id)
    if request.method == "POST":
        if not can(Role.ADMIN):
            abort(403)
        form = forms.GroupSettingsForm()
        if form.validate_on_submit():
            changed = service.update_group_settings(
                group,
                actor=current_user,
                source="ui",
                ip=request.remote_addr,
                automatic_backups=form.automatic_backups.data,
            )
            db.session.commit()
            if changed:
                flash(_("The settings have been saved."), "success")
            return redirect(url_for("contacts.group_settings", group_id=group.id))
        return _render_group_settings(group, settings_form=form)
    return _render_group_settings(group)


@bp.route("/groups/<int:group_id>/rename", methods=["POST"])
@require_role(Role.EDITOR)
def rename_group(group_id: int):
    group = get_owned_or_404(Group, group_id)
    form = forms.GroupNameForm()
    if form.validate_on_submit():
        try:
            renamed = service.rename_group(
                group, form.name.data, actor=current_user, source="ui", ip=request.remote_addr
            )
        except service.ServiceError as exc:
            db.session.rollback()
            form.name.errors = [str(exc)]
        else:
            db.session.commit()
            if renamed:
                flash(_("The group has been renamed."), "success")
            return redirect(url_for("contacts.group_settings", group_id=group.id))
    return _render_group_settings(group, rename_form=form)


@bp.route("/groups/<int:group_id>/delete", methods=["POST"])
@require_role(Role.EDITOR)
def delete_group(group_id: int):
    group = get_owned_or_404(Group, group_id)
    form = forms.DeleteGroupForm()
    if form.validate_on_submit():
        name = group.name
        try:
            service.delete_group(group, actor=current_user, source="ui", ip=request.remote_addr)
        except service.ServiceError as exc:
            db.session.rollback()
            flash(str(exc), "danger")
            return redirect(url_for("contacts.group_settings", group_id=group_id))
        db.session.commit()
        flash(
            _("The group “%(name)s” has been deleted. Its contacts were kept.", name=name),
            "success",
        )
        return redirect(url_for("contacts.list_groups"))
    return _render_group_settings(group, delete_form=form)


# --- the account's home page (added by the area's init_app) ------------------------------

HOME_GROUPS = 10  # the largest groups on the home page; the groups page lists all


def home_panel(account: Account, now: datetime) -> dict[str, Any]:
    """The contacts by status and the largest groups."""
    groups = queries.groups_of(account)
    counts = contact_counts.group_counts(account, [grp.id for grp in groups])
    largest = sorted(groups, key=lambda grp: (-counts[grp.id].total, grp.name.lower(), grp.id))
    return {
        "status_counts": contact_counts.status_counts(account),
        "contact_status_labels": forms.STATUS_LABELS,
        "groups": largest[:HOME_GROUPS],
        "group_total": len(groups),
        "group_counts": counts,
    }
