"""Operations on accounts, users, memberships and invitations.

Services take explicit arguments (account, actor, ...) and flush; the request
(or CLI command, or job) commits once at its end."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from portal import clock
from portal.accounts import tasks  # the RQ glue calls back into this module: a cycle
from portal.accounts.models import Account, Invitation, LoginSession, Membership, Role, User
from portal.core import audit
from portal.core.errors import ServiceError
from portal.core.privacy import normalize_email
from portal.extensions import db
from portal.mail import external_url, send_mail

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(text: str) -> bool:
    """A line break, a NUL or another control character: none belongs in a name. A line
    break in the account's name went into the subject of every invitation mail (which
    refuses header lines with one: every later invitation failed), a NUL cannot be
    stored by PostgreSQL at all."""
    return bool(_CONTROL.search(text or ""))


MIN_PASSWORD_LENGTH = 10


class LastOwnerError(ServiceError):
    pass


# --- accounts -------------------------------------------------------------


def create_account(
    name: str,
    slug: str,
    *,
    timezone: str = "Europe/Berlin",
    default_locale: str = "en",
    actor: User | None = None,
) -> Account:

    slug = slug.strip().lower()
    name = _account_name(name)
    if not SLUG_RE.match(slug):
        raise ServiceError(_l("Use lowercase letters, digits and hyphens for the address."))
    if db.session.scalar(db.select(Account.id).where(Account.slug == slug)):
        raise ServiceError(_l("This address is already taken."))
    account = Account(name=name, slug=slug, timezone=timezone, default_locale=default_locale)
    db.session.add(account)
    db.session.flush()
    audit.record(
        "account.created", account=account, actor=actor, object_type="account", object_id=account.id
    )
    return account


def _account_name(name: str) -> str:

    name = (name or "").strip()
    if has_control_characters(name):
        raise ServiceError(_l("The name must be a single line without control characters."))
    return name


def update_account_settings(
    account: Account, *, actor: User, ip: str | None = None, **changes
) -> dict:
    """Apply changed settings and audit each change with its old and new value; raises
    ServiceError (and changes nothing) for a name with a line break or control character."""
    allowed = {"name", "timezone", "default_locale", "automatic_backups"}
    if "name" in changes:
        changes["name"] = _account_name(changes["name"])
    applied = {}
    for field, value in changes.items():
        if field not in allowed:
            raise ValueError(field)
        old = getattr(account, field)
        if old != value:
            setattr(account, field, value)
            applied[field] = {"old": old, "new": value}
    if applied:
        audit.record(
            "account.settings_changed",
            account=account,
            actor=actor,
            object_type="account",
            object_id=account.id,
            details=applied,
            ip=ip,
        )
    db.session.flush()
    return applied


# --- users -----------------------------------------------------------------


def create_user(
    email: str,
    password: str | None,
    *,
    name: str = "",
    is_staff: bool = False,
    locale: str | None = None,
) -> User:

    email = normalize_email(email)
    if db.session.scalar(db.select(User.id).where(User.email == email)):
        raise ServiceError(_l("A user with this email address already exists."))
    user = User(email=email, name=name, is_staff=is_staff, locale=locale)
    if password is not None:
        set_password(user, password)
    db.session.add(user)
    db.session.flush()
    return user


def set_name(user: User, name: str | None) -> None:
    """An empty field keeps the name the person already has (an invitation to a second
    account must not wipe it)."""
    if name and name.strip():
        user.name = name.strip()


def set_password(user: User, password: str) -> None:

    if len(password) < MIN_PASSWORD_LENGTH:
        raise ServiceError(
            _l("The password must have at least %(n)d characters.", n=MIN_PASSWORD_LENGTH)
        )
    user.password_hash = generate_password_hash(password)


def authenticate(email: str, password: str) -> User | None:
    """The user for these credentials, or None; same work for unknown emails."""
    user = db.session.scalar(db.select(User).where(User.email == email.strip().lower()))
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)  # equal timing for unknown users
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    user.last_login_at = clock.now()
    return user


_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


# --- sign-ins ----------------------------------------------------------------
#
# The session and the remember cookie carry "<user id>.<session version>.<token>" instead
# of the bare user id that Flask-Login would put there: the token is random per sign-in and
# stored only as a hash (LoginSession), the version is the user's session_version. A
# cookie is good only while its row exists, has not expired and both versions match, so
# signing out, signing out everywhere, a password reset or change and a role taken away
# refuse every copy of an old cookie, wherever it was kept.


def start_login(user: User, *, remember: bool) -> str:
    """Record a sign-in and return the value the session (and the remember cookie) keep.
    A remembered sign-in lasts REMEMBER_DAYS, any other one the session's lifetime."""
    config = current_app.config
    token = secrets.token_urlsafe(32)
    now = clock.now()
    if remember:
        lifetime = timedelta(days=config["REMEMBER_DAYS"])
    else:
        lifetime = timedelta(seconds=int(config["PERMANENT_SESSION_LIFETIME"]))
    db.session.add(
        LoginSession(
            user_id=user.id,
            token_hash=hash_token(token),
            version=user.session_version,
            remember=remember,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    db.session.flush()
    return f"{user.id}.{user.session_version}.{token}"


def _parse_login(value: object) -> tuple[int, int, str] | None:
    if not isinstance(value, str) or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not parts[2]:
        return None
    user_id, version = int(parts[0]), int(parts[1])
    if user_id > 2**62 or version > 2**31:
        return None
    return user_id, version, parts[2]


def _login_row(value: object) -> LoginSession | None:
    parsed = _parse_login(value)
    if parsed is None:
        return None
    user_id, version, token = parsed
    row = db.session.scalar(
        db.select(LoginSession).where(LoginSession.token_hash == hash_token(token))
    )
    if row is None or row.user_id != user_id or row.version != version:
        return None
    return row


def user_for_login(value: object) -> User | None:
    """The signed-in user a session or remember cookie names, or None when that sign-in
    was ended, has expired, or belongs to an older session version of the user."""
    row = _login_row(value)
    if row is None or row.expires_at <= clock.now():
        return None
    user = db.session.get(User, row.user_id)
    if user is None or not user.active or user.session_version != row.version:
        return None
    return user


def login_is_remembered(value: object) -> bool:
    row = _login_row(value)
    return bool(row and row.remember)


def end_login(value: object) -> None:
    """Sign out one browser: its sign-in row goes, so copies of its cookies stop working."""
    row = _login_row(value)
    if row is not None:
        db.session.delete(row)
        db.session.flush()


def end_all_logins(user: User) -> None:
    """End every sign-in of the user on every device: the version goes up (no cookie made
    before matches it) and the rows go (nothing is left to match)."""
    user.session_version = (user.session_version or 0) + 1
    db.session.execute(db.delete(LoginSession).where(LoginSession.user_id == user.id))
    db.session.flush()


def sign_out_everywhere(user: User, *, ip: str | None = None) -> None:
    """The profile's "sign out everywhere": for a lost phone or a shared computer."""
    end_all_logins(user)
    audit.record(
        "user.signed_out_everywhere", actor=user, object_type="user", object_id=user.id, ip=ip
    )


def change_password(
    user: User, current_password: str, new_password: str, *, ip: str | None = None
) -> None:
    """A signed-in user's new password. The current one is asked again (a browser left
    open is not enough), and every sign-in ends: whoever knew the old password and
    signed in with it is out. The caller signs the current browser in again."""

    if not user.password_hash or not check_password_hash(user.password_hash, current_password):
        raise ServiceError(_l("The current password is wrong."))
    set_password(user, new_password)
    end_all_logins(user)
    audit.record("user.password_changed", actor=user, object_type="user", object_id=user.id, ip=ip)


def reset_password(user: User, new_password: str, *, ip: str | None = None) -> None:
    """The new password from an emailed reset link; every sign-in ends, because a reset
    is what someone does who fears another person knows the password."""
    set_password(user, new_password)
    end_all_logins(user)
    audit.record("user.password_reset", actor=user, object_type="user", object_id=user.id, ip=ip)


def sweep_expired_logins(now: datetime | None = None) -> int:
    """Rows of sign-ins past their expiry (they no longer open anything)."""
    result = db.session.execute(
        db.delete(LoginSession).where(LoginSession.expires_at < (now or clock.now()))
    )
    db.session.flush()
    return result.rowcount or 0


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(db.select(User).where(User.email == email.strip().lower()))


def update_profile(user: User, *, name: str, locale: str | None, timezone: str | None) -> None:
    user.name = name.strip()
    user.locale = locale or None
    user.timezone = timezone or None
    db.session.flush()


# --- password reset ----------------------------------------------------------


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def make_reset_token(user: User) -> str:
    """Signed token bound to the current password hash, so it works only once."""
    fingerprint = hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]
    return _reset_serializer().dumps({"u": user.id, "p": fingerprint})


def user_for_reset_token(token: str) -> User | None:
    try:
        data = _reset_serializer().loads(
            token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"]
        )
    except (BadSignature, SignatureExpired):
        return None
    user = db.session.get(User, data.get("u"))
    if user is None:
        return None
    fingerprint = hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]
    return user if secrets.compare_digest(fingerprint, data.get("p", "")) else None


def request_password_reset(email: str) -> None:
    """Queue the reset mail for this address, known or not. The request does the same
    work either way (no look-up, no token, no mail server to wait for), so neither the
    answer nor its time tells whether the address has an account; the worker looks it
    up and mails only a user (send_password_reset)."""

    tasks.send_password_reset.enqueue(email.strip().lower()[:320])


def send_password_reset(email: str) -> None:
    """Mail a reset link if the address belongs to an active user; nothing otherwise."""

    user = find_user_by_email(email)
    if user is None or not user.active:
        return
    link = external_url("accounts.reset_password", token=make_reset_token(user))
    send_mail(
        user.email,
        _l("Reset your password"),
        "password_reset",
        locale=user.locale or "en",
        user=user,
        link=link,
    )


# --- memberships ----------------------------------------------------------


def add_member(
    account: Account, user: User, role: Role | str, *, actor: User | None = None
) -> Membership:
    membership = Membership(account=account, user=user, role=Role(role).value)
    db.session.add(membership)
    db.session.flush()
    audit.record(
        "member.added",
        account=account,
        actor=actor,
        object_type="user",
        object_id=user.id,
        details={"email": user.email, "role": membership.role},
    )
    return membership


def _owner_count(account: Account) -> int:
    return db.session.scalar(
        db.select(db.func.count(Membership.id)).where(
            Membership.account_id == account.id, Membership.role == Role.OWNER.value
        )
    )


def _may_manage(actor_membership: Membership, target_role: Role) -> bool:
    """Admins manage everyone but owners; only owners make or touch owners."""
    mine = actor_membership.role_enum
    if target_role is Role.OWNER:
        return mine is Role.OWNER
    return mine.at_least(Role.ADMIN)


def change_role(
    membership: Membership, new_role: Role | str, *, actor: User, actor_membership: Membership
) -> None:

    new_role = Role(new_role)
    old_role = membership.role_enum
    if not (_may_manage(actor_membership, old_role) and _may_manage(actor_membership, new_role)):
        raise ServiceError(_l("Only an owner can change the role of an owner."))
    if (
        old_role is Role.OWNER
        and new_role is not Role.OWNER
        and _owner_count(membership.account) <= 1
    ):
        raise LastOwnerError(_l("An account needs at least one owner."))
    membership.role = new_role.value
    if new_role.rank < old_role.rank:
        end_all_logins(membership.user)  # a role taken away: sign in again under the new one
    audit.record(
        "member.role_changed",
        account=membership.account,
        actor=actor,
        object_type="user",
        object_id=membership.user_id,
        details={"email": membership.user.email, "old": old_role.value, "new": new_role.value},
    )
    db.session.flush()


def remove_member(membership: Membership, *, actor: User, actor_membership: Membership) -> None:

    if not _may_manage(actor_membership, membership.role_enum):
        raise ServiceError(_l("Only an owner can remove an owner."))
    if membership.role_enum is Role.OWNER and _owner_count(membership.account) <= 1:
        raise LastOwnerError(_l("An account needs at least one owner."))
    audit.record(
        "member.removed",
        account=membership.account,
        actor=actor,
        object_type="user",
        object_id=membership.user_id,
        details={"email": membership.user.email, "role": membership.role},
    )
    end_all_logins(membership.user)  # signed out everywhere, as after a password reset
    db.session.delete(membership)
    db.session.flush()


def members(account: Account) -> list[Membership]:
    return list(
        db.session.scalars(
            db.select(Membership)
            .join(User)
            .where(Membership.account_id == account.id)
            .order_by(User.email)
        )
    )


def get_membership(account: Account, membership_id: int) -> Membership | None:
    return db.session.scalar(
        db.select(Membership).where(
            Membership.id == membership_id, Membership.account_id == account.id
        )
    )


# --- invitations ----------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_member(
    account: Account, email: str, role: Role | str, *, actor: User, actor_membership: Membership
) -> Invitation:
    """Create an invitation and mail its link in the invitee's (or account's) language."""

    role = Role(role)
    if not _may_manage(actor_membership, role):
        raise ServiceError(_l("Only an owner can invite another owner."))
    email = normalize_email(email)
    existing = find_user_by_email(email)
    if existing is not None and any(m.account_id == account.id for m in existing.memberships):
        raise ServiceError(_l("This person is already a member of the account."))
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        account=account,
        email=email,
        role=role.value,
        token_hash=hash_token(token),
        invited_by=actor,
        expires_at=clock.now() + timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(
        "member.invited",
        account=account,
        actor=actor,
        object_type="invitation",
        object_id=invitation.id,
        details={"email": email, "role": role.value},
    )
    locale = (existing.locale if existing and existing.locale else None) or account.default_locale
    link = external_url("accounts.accept_invitation", token=token)
    send_mail(
        email,
        _l("You are invited to %(account)s", account=account.name),
        "invitation",
        locale=locale,
        account=account,
        inviter=actor,
        link=link,
        role=role.value,
        days=current_app.config["INVITATION_DAYS"],
    )
    return invitation


def pending_invitations(account: Account) -> list[Invitation]:
    return list(
        db.session.scalars(
            db.select(Invitation)
            .where(
                Invitation.account_id == account.id,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > clock.now(),
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def invitation_for_token(token: str) -> Invitation | None:
    invitation = db.session.scalar(
        db.select(Invitation).where(Invitation.token_hash == hash_token(token))
    )
    if invitation is None or invitation.accepted_at is not None:
        return None
    if invitation.expires_at < clock.now():
        return None
    return invitation


def accept_invitation(invitation: Invitation, user: User) -> Membership:

    if user.email != invitation.email:
        raise ServiceError(_l("This invitation was sent to another email address."))
    invitation.accepted_at = clock.now()
    existing = db.session.scalar(
        db.select(Membership).where(
            Membership.account_id == invitation.account_id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        return existing
    return add_member(invitation.account, user, invitation.role, actor=user)
