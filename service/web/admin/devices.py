"""设备 (devices): the list with last seen, ratings today and the silent flag; add, pair a
tablet, disable/enable, new key. Managers read their subtree's list; only admins change it."""
from __future__ import annotations

import segno
from flask import abort, current_app, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from models import CHANNEL_LABELS, Department, Device
from service import audit
from service.auth.access import in_scope, scope_filter
from service.citizen import hall
from service.devices import health, registry
from service.extensions import db
from service.org import add_device
from service.web.admin import admin_only, blp, roles, logged, saved, user
from service.web.admin.forms import DeviceForm

# Channels an admin adds devices for; ``default`` devices are hcp's own (default ratings).
ADDABLE_CHANNELS = [c for c in CHANNEL_LABELS if c != "default"]
NO_STORE = {"Cache-Control": "no-store"}  # pages that show a key or a pairing code


def departments_in_scope() -> list[Department]:
    return list(db.session.scalars(select(Department).where(scope_filter(user(), Department.id))
                                   .order_by(Department.path)))


def department_choices() -> list[tuple[str, str]]:
    return [("", "请选择部门")] + [(d.code, "　" * (d.path.count("/") - 2) + d.name) for d in departments_in_scope()]


def _form(form: DeviceForm | None = None) -> DeviceForm:
    form = form or DeviceForm(formdata=None)
    form.department.choices = department_choices()
    form.channel.choices = [("", "请选择渠道")] + [(c, CHANNEL_LABELS[c]) for c in ADDABLE_CHANNELS]
    return form


def _list(form: DeviceForm, status: int = 200):
    u = user()
    devices = list(db.session.scalars(select(Device).where(scope_filter(u, Device.department_id))
                                      .options(joinedload(Device.department)).order_by(Device.id)))
    rows = health.check(db.session, devices)
    settings = current_app.config["HCP_SETTINGS"]
    return render_template("admin/devices.html", rows=rows, form=form, can_change=u.role == "admin",
                           silent=[r for r in rows if r.silent], silent_hours=settings.device_silent_hours,
                           working_hours=settings.working_hours), status


def _device(device_id: int, lock: bool = False) -> Device:
    device = db.session.get(Device, device_id, with_for_update=lock)
    if device is None or not in_scope(user(), device.department):
        abort(404)
    return device


def pairing_link(code: str) -> str:
    return f"{current_app.config['HCP_SETTINGS'].public_url}/kiosk#pair={code}"


def qr_svg(text: str, title: str = "扫码配对") -> str:
    """An inline SVG QR code (no script, so the pages' CSP allows it)."""
    return segno.make(text, error="m").svg_inline(scale=6, border=2, title=title)


def _issued(device: Device, key: str | None, code: str | None, row=None, title: str = ""):
    link = pairing_link(code) if code else None
    hall_link = hall.link(device) if device.qr_code else None
    return render_template("admin/device_issued.html", device=device, key=key, code=code, link=link,
                           qr=qr_svg(link) if link else None, expires_at=row.expires_at if row else None,
                           hall_link=hall_link, hall_qr=qr_svg(hall_link, "扫码评价") if hall_link else None,
                           title=title), 200, NO_STORE


@blp.get("/devices")
@roles("admin", "manager")
def devices():
    return _list(_form())


@blp.post("/devices")
@admin_only
def device_add():
    form = _form(DeviceForm())
    if not form.validate():
        return _list(form, 422)
    dept = db.session.scalar(select(Department).where(Department.code == form.department.data))
    if dept is None or not in_scope(user(), dept):
        form.department.errors = ["请选择列表中的部门"]
        return _list(form, 422)
    if form.channel.data not in ADDABLE_CHANNELS:
        form.channel.errors = ["请选择列表中的渠道"]
        return _list(form, 422)
    device, key = add_device(form.name.data.strip(), dept, form.channel.data, (form.window.data or "").strip() or None,
                             (form.rate_limit.data or "").strip() or None)
    db.session.flush()
    code, row = (None, None) if device.qr_code else registry.issue_pair_code(db.session, device, user().username)
    logged("device.add", f"设备 {device.id} {device.name}", None, registry.snapshot(device))
    if device.qr_code:  # a hall QR needs no key and no tablet: its printed code is the device
        return _issued(device, None, None, title="扫码评价二维码已生成")
    return _issued(device, key, code, row, "设备已添加")


@blp.post("/devices/<int:device_id>/disable")
@admin_only
def device_disable(device_id: int):
    return _set_active(device_id, False)


@blp.post("/devices/<int:device_id>/enable")
@admin_only
def device_enable(device_id: int):
    return _set_active(device_id, True)


def _set_active(device_id: int, active: bool):
    device = _device(device_id, lock=True)
    before = registry.snapshot(device)
    registry.set_active(device, active)
    seconds = current_app.config["HCP_SETTINGS"].device_cache_seconds
    return saved("device.enable" if active else "device.disable", f"设备 {device.id} {device.name}",
                 *audit.changed(before, registry.snapshot(device)),
                 f"设备「{device.name}」已启用" if active else
                 f"设备「{device.name}」已停用，{seconds:g} 秒内所有服务器都将拒绝其密钥", url_for("admin.devices"))


@blp.post("/devices/<int:device_id>/rotate")
@admin_only
def device_rotate(device_id: int):
    device = _device(device_id, lock=True)
    key = registry.rotate_key(device)
    logged("device.rotate_key", f"设备 {device.id} {device.name}", {"密钥": "旧密钥"}, {"密钥": "已更换"})
    return _issued(device, key, None, title="已更换设备密钥")


@blp.post("/devices/<int:device_id>/pair")
@admin_only
def device_pair(device_id: int):
    device = _device(device_id, lock=True)
    if not device.active or device.qr_code:  # a hall QR is its printed code, never a tablet
        abort(409)
    code, row = registry.issue_pair_code(db.session, device, user().username)
    logged("device.pair_code", f"设备 {device.id} {device.name}", None,
           {"有效期至": row.expires_at.isoformat(timespec="minutes")})
    return _issued(device, None, code, row, "平板配对码")
