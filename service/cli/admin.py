"""Admin commands: departments, service items, devices and staff users."""
from __future__ import annotations

import re
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from limits import parse
from sqlalchemy import select

from models import CHANNELS, ROLES, Department, Device, ServiceItem, User
from models.clock import SHANGHAI
from service import audit, staff
from service.auth.api import unlock
from service.devices import health, registry
from service.extensions import db
from service.notify import redact_url
from service.org import (OrgError, add_department, add_device, add_item, add_user, emails, move_department,
                         notify_snapshot, rename_department, set_credit_code, set_notify)


def logged(action: str, target: str, before: dict | None = None, after: dict | None = None) -> None:
    """The change goes into the 操作日志 (actor ``cli:LOGIN``) in its own transaction, and both commit once."""
    audit.record(db.session, audit.shell_actor(), action, target, before, after)
    db.session.commit()


def _tree(dept: Department) -> dict:
    return {"名称": dept.name, "上级": dept.parent.code if dept.parent else None}


def department_by_code(code: str) -> Department:
    dept = db.session.scalar(select(Department).where(Department.code == code))
    if dept is None:
        raise click.BadParameter(f"no department with code {code}", param_hint="--department")
    return dept


def _unique(model, column, value, what: str) -> None:
    if db.session.scalar(select(model.id).where(column == value)) is not None:
        raise click.ClickException(f"{what} {value} already exists")


@click.group()
def departments():
    """Departments (a tree: district → bureau → section)."""


@departments.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--parent", help="code of the parent department")
@with_appcontext
def departments_add(code, name, parent):
    """Add department CODE named NAME."""
    _unique(Department, Department.code, code, "department")
    dept = add_department(code, name, department_by_code(parent) if parent else None)
    logged("department.add", f"部门 {dept.code}", None, _tree(dept))
    click.echo(f"department {dept.code} {dept.name} added")


@departments.command("set")
@click.argument("code")
@click.option("--credit-code", required=True,
              help="the department's 统一社会信用代码 (deptCode of its 上报 records); '' removes it")
@with_appcontext
def departments_set(code, credit_code):
    """Set department CODE's unified social credit code (docs/exchange.md)."""
    dept = department_by_code(code)
    before = {"统一社会信用代码": dept.credit_code}
    try:
        set_credit_code(dept, credit_code.strip().upper())
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--credit-code") from None
    logged("department.credit_code", f"部门 {dept.code}",
           *audit.changed(before, {"统一社会信用代码": dept.credit_code}))
    click.echo(f"department {dept.code}: credit code {dept.credit_code or '-'}")


@departments.command("rename")
@click.argument("code")
@click.argument("name")
@with_appcontext
def departments_rename(code, name):
    """Give department CODE a new NAME."""
    dept = department_by_code(code)
    before = {"名称": dept.name}
    rename_department(dept, name)
    logged("department.rename", f"部门 {dept.code}", *audit.changed(before, {"名称": dept.name}))
    click.echo(f"department {code} is now {name}")


@departments.command("move")
@click.argument("code")
@click.option("--parent", help="code of the new parent; omitted: a top-level department")
@with_appcontext
def departments_move(code, parent):
    """Put department CODE (and everything under it) under another parent."""
    dept = department_by_code(code)
    before = _tree(dept)
    try:
        moved = move_department(db.session, dept, department_by_code(parent) if parent else None)
    except OrgError as err:
        raise click.ClickException(f"{code} cannot move under its own subtree") from err
    logged("department.move", f"部门 {code}", *audit.changed(before, {**before, "上级": parent or None}))
    click.echo(f"department {code} moved under {parent or '(top level)'}; {moved} department path(s) updated")


@departments.command("list")
@with_appcontext
def departments_list():
    """List departments as a tree."""
    rows = db.session.scalars(select(Department).order_by(Department.path))
    for dept in rows:
        depth = dept.path.count("/") - 2
        click.echo(f"{'  ' * depth}{dept.code}\t{dept.name}")


def _email(ctx, param, value):
    """Addresses separated by commas; an empty string clears the setting."""
    if value is None or value == "":
        return value
    try:
        return emails(value)
    except OrgError as err:
        raise click.BadParameter(f"not an e-mail address: {err.detail}") from err


def http_url(ctx, param, value):
    """An http(s) URL option; an empty string (clearing the setting) passes."""
    if value is None or value == "":
        return value
    if not re.match(r"https?://[^\s/]+", value):
        raise click.BadParameter(f"{param.opts[0] if param else 'the URL'} must be an http(s) URL")
    return value


@departments.command("notify")
@click.argument("code")
@click.option("--webhook", callback=http_url,
              help="group-robot webhook URL (WeCom/DingTalk); '' removes it")
@click.option("--secret", help="a DingTalk robot's 加签 secret (SEC…), '-' to read it from stdin; '' removes it")
@click.option("--email", callback=_email, help="department mailbox(es), comma separated; '' removes it")
@with_appcontext
def departments_notify(code, webhook, secret, email):
    """Set where a department's red/yellow cards and digests go (docs/notifications.md).

    Without options, prints the current settings.
    """
    dept = department_by_code(code)
    if secret == "-":
        secret = sys.stdin.readline().strip()
        if not secret:
            raise click.BadParameter("no secret on stdin", param_hint="--secret")
    before = notify_snapshot(dept)
    try:
        set_notify(dept, webhook, secret, email)
    except OrgError as err:
        raise click.BadParameter(f"not valid: {err.detail}", param_hint=f"--{err.field}") from err
    logged("department.notify", f"部门 {dept.code}", *audit.changed(before, notify_snapshot(dept)))
    hook = redact_url(dept.notify_webhook) if dept.notify_webhook else "-"
    signed = " (signed, 加签)" if dept.notify_webhook_secret_enc else ""
    click.echo(f"department {dept.code}: webhook {hook}{signed}; email {dept.notify_email or '-'}")


@click.group()
def items():
    """Service items (事项) that ratings may name."""


@items.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--department", required=True, help="code of the owning department")
@with_appcontext
def items_add(code, name, department):
    """Add service item CODE named NAME, owned by a department."""
    _unique(ServiceItem, ServiceItem.code, code, "item")
    item = add_item(code, name, department_by_code(department))
    logged("item.add", f"事项 {item.code}", None, {"名称": item.name, "部门": department})
    click.echo(f"item {code} {name} added")


@click.group()
def devices():
    """Devices: kiosks, tablets and channel relays, each with its own key."""


def _rate_limit(ctx, param, value):
    if value is None:
        return None
    try:
        parse(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a rate like 5/minute") from err
    return value


@devices.command("add")
@click.argument("name")
@click.option("--department", required=True, help="department code")
@click.option("--channel", required=True, type=click.Choice([c for c in CHANNELS if c != "default"]),
              help="default is hcp's own channel of default ratings")
@click.option("--window", help="window number (窗口号) in the hall")
@click.option("--rate-limit", callback=_rate_limit, help="e.g. 5/minute (default HCP_DEVICE_RATE_LIMIT)")
@with_appcontext
def devices_add(name, department, channel, window, rate_limit):
    """Add a device and print its key — shown this once only."""
    device, key = add_device(name, department_by_code(department), channel, window, rate_limit)
    db.session.flush()
    logged("device.add", f"设备 {device.id} {device.name}", None, registry.snapshot(device))
    click.echo(f"device {device.id} {name} added; its key (shown once, keep it safe):", err=True)
    if device.qr_code:  # a hall QR: what to print at the window (hcp qr list shows it again)
        from service.citizen.hall import link
        click.echo(f"its hall QR page: {link(device)} (print {link(device)}/qr.svg)", err=True)
    click.echo(key)


@devices.command("list")
@with_appcontext
def devices_list():
    """List devices with when each was last seen (keys are never shown again).

    Columns: id, name, department, channel, window, active|disabled, last seen
    (Asia/Shanghai, or "never"), and "SILENT" for an active device silent for more than
    HCP_DEVICE_SILENT_HOURS working hours.
    """
    devices = list(db.session.scalars(select(Device).order_by(Device.id)))
    for h in health.check(db.session, devices):
        d = h.device
        seen = d.last_seen_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if d.last_seen_at else "never"
        click.echo(f"{d.id}\t{d.name}\t{d.department.code}\t{d.channel}\t{d.window or ''}\t"
                   f"{'active' if d.active else 'disabled'}\t{seen}{chr(9) + 'SILENT' if h.silent else ''}"
                   + (f"\t/q/{d.qr_code}" if d.qr_code else ""))


def _device(device_id: int) -> Device:
    device = db.session.get(Device, device_id)
    if device is None:
        raise click.ClickException(f"no device {device_id}")
    return device


@devices.command("pair-code")
@click.argument("device_id", type=int)
@with_appcontext
def devices_pair_code(device_id):
    """Print a 6-character pairing code for the tablet page (/kiosk): valid 10 minutes, once.

    The tablet that uses it gets a new key; any earlier key of the device stops working.
    """
    device = _device(device_id)
    code, row = registry.issue_pair_code(db.session, device, "cli")
    logged("device.pair_code", f"设备 {device.id} {device.name}", None,
           {"有效期至": row.expires_at.isoformat(timespec="minutes")})
    click.echo(f"device {device.id} {device.name}: pairing code valid until "
               f"{row.expires_at.astimezone(SHANGHAI):%H:%M} (Asia/Shanghai), once:", err=True)
    click.echo(code)


@devices.command("rotate-key")
@click.argument("device_id", type=int)
@with_appcontext
def devices_rotate_key(device_id):
    """Give a device a new key and print it once; the old key stops working."""
    device = _device(device_id)
    key = registry.rotate_key(device)
    logged("device.rotate_key", f"设备 {device.id} {device.name}", {"密钥": "旧密钥"}, {"密钥": "已更换"})
    click.echo(f"device {device.id} {device.name}: new key (shown once; the old one no longer works):", err=True)
    click.echo(key)


def _device_active(device_id: int, active: bool) -> Device:
    device = _device(device_id)
    before = registry.snapshot(device)
    registry.set_active(device, active)
    logged("device.enable" if active else "device.disable", f"设备 {device.id} {device.name}",
           *audit.changed(before, registry.snapshot(device)))
    return device


@devices.command("disable")
@click.argument("device_id", type=int)
@with_appcontext
def devices_disable(device_id):
    """Refuse a device's key from now on (a lost or stolen kiosk); its ratings stay."""
    device = _device_active(device_id, False)
    seconds = current_app.config["HCP_SETTINGS"].device_cache_seconds
    click.echo(f"device {device.id} {device.name} disabled; every web process refuses its key "
               f"within {seconds:g} s (HCP_DEVICE_CACHE_SECONDS)")


@devices.command("enable")
@click.argument("device_id", type=int)
@with_appcontext
def devices_enable(device_id):
    """Accept a disabled device's key again."""
    device = _device_active(device_id, True)
    click.echo(f"device {device.id} {device.name} enabled")


@click.group()
def users():
    """Staff users: handlers, supervisors, managers and admins."""


def read_password() -> str:
    """The password from stdin: a prompt on a terminal, the first line from a pipe."""
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--department", required=True, help="department code")
@click.option("--name", "display_name", help="display name, e.g. 张三")
@click.option("--email", callback=_email, help="address for red/yellow cards and the morning digest")
@with_appcontext
def users_add(username, role, department, display_name, email):
    """Add a staff user; the password is read from stdin (at least 8 characters)."""
    _unique(User, User.username, username, "user")
    dept = department_by_code(department)
    password = read_password()
    if len(password) < 8:
        raise click.ClickException("the password needs at least 8 characters")
    u = add_user(username, password, role, dept, display_name, email or None)
    db.session.flush()
    logged("user.add", f"用户 {username}", None, staff.snapshot(u))
    click.echo(f"user {username} ({role}, {dept.code}) added")


def _user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _user_active(username: str, active: bool) -> None:
    u = _user(username)
    before = staff.snapshot(u)
    staff.set_active(u, active)
    logged("user.enable" if active else "user.disable", f"用户 {username}", *audit.changed(before, staff.snapshot(u)))


@users.command("disable")
@click.argument("username")
@with_appcontext
def users_disable(username):
    """Sign a user out everywhere and refuse their password, tokens and sessions; their cases stay."""
    # Enabling the user again does not bring old tokens or sessions back.
    _user_active(username, False)
    click.echo(f"user {username} disabled")


@users.command("enable")
@click.argument("username")
@with_appcontext
def users_enable(username):
    """Let a disabled user sign in again."""
    _user_active(username, True)
    click.echo(f"user {username} enabled")


@users.command("unlock")
@click.argument("username")
@with_appcontext
def users_unlock(username):
    """Forget a user's counted sign-in failures (the lock over all addresses)."""
    unlock(_user(username).username)
    logged("user.unlock", f"用户 {username}", {"锁定": True}, {"锁定": False})
    click.echo(f"user {username} unlocked")


@users.command("password-link")
@click.argument("username")
@with_appcontext
def users_password_link(username):
    """Print a one-time set-password link for the user (72 hours, once)."""
    raw = staff.issue_link(db.session, _user(username))
    logged("user.password_link", f"用户 {username}")
    click.echo(f"{current_app.config['HCP_SETTINGS'].public_url}/set-password/{raw}")


@users.command("move")
@click.argument("username")
@click.option("--department", required=True, help="code of the new department")
@click.option("--by", "actor", default="admin", show_default=True,
              help="username recorded in the returned cases' history")
@with_appcontext
def users_move(username, department, actor):
    """Move a user to another department; open cases outside its scope return to 待分派."""
    u = _user(username)
    before = staff.snapshot(u)
    returned = staff.move_user(db.session, u, department_by_code(department), _user(actor))
    logged("user.move", f"用户 {username}", *staff.moved(before, u, returned))
    click.echo(f"user {username} moved to {department}; {len(returned)} open case(s) returned to unassigned"
               + (f": {', '.join(map(str, returned))}" if returned else ""))
