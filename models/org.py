"""Who and what: the department tree, service items, devices and staff users."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.types import UTCDateTime, utcnow
from models.base import db

# The rating channels (评价渠道) and their Chinese labels: the one table the API, figures,
# exports and pages use.
CHANNEL_LABELS = {
    "pc": "网上办事大厅（PC端）",
    "mobile": "移动端",
    "qrcode": "二维码",
    "hall_tablet": "大厅平板",
    "hall_terminal": "窗口评价器",
    "sms": "短信",
    "hotline": "12345热线",
    "default": "系统默认评价",
}
CHANNELS = tuple(CHANNEL_LABELS)
ROLE_LABELS = {"handler": "承办人", "supervisor": "负责人", "manager": "管理人员", "admin": "系统管理员"}
ROLES = tuple(ROLE_LABELS)


class Department(db.Model):
    """A node of the district → bureau → section tree.

    ``path`` is the chain of ids from the root (``/1/4/9/``), so a scope — a department
    and everything under it — is one indexed ``LIKE 'prefix%'`` match.
    """

    __tablename__ = "departments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    path: Mapped[str] = mapped_column(String(512), index=True, default="")
    notify_webhook: Mapped[str | None] = mapped_column(String(500))
    # A DingTalk robot's 加签 secret, Fernet-encrypted under HCP_DATA_KEY (it must be
    # usable to sign, so it cannot be hashed); posts to the webhook are then signed.
    notify_webhook_secret_enc: Mapped[str | None] = mapped_column(String(500))
    notify_email: Mapped[str | None] = mapped_column(String(500))
    # 统一社会信用代码: the department's deptCode in 上报 records (hcp departments set --credit-code).
    credit_code: Mapped[str | None] = mapped_column(String(18))

    parent: Mapped[Department | None] = relationship(remote_side=[id])


class ServiceItem(db.Model):
    """A government service (事项) that ratings may name by ``item_code``."""

    __tablename__ = "service_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)

    department: Mapped[Department] = relationship()


class Device(db.Model):
    """A kiosk, tablet or channel relay; its key is kept only as a SHA-256 hash."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    window: Mapped[str | None] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rate_limit: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The last request its key was accepted for (written at most once a minute per web
    # process, service/devices/health.py); None: never seen.
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A qrcode device's short public code: its hall QR opens /q/{qr_code} (SPEC §7). Public,
    # printed at the window — not a credential; the device's key stays its own.
    qr_code: Mapped[str | None] = mapped_column(String(16), unique=True, index=True)

    department: Mapped[Department] = relationship()


class QrVoter(db.Model):
    """When a phone last rated a window through its hall QR (HCP_QR_MIN_MINUTES).

    ``voter`` is a keyed hash of the client address and the page's cookie, so no address is
    kept; one row per (device, voter), moved forward by each rating it lets through.
    """

    __tablename__ = "qr_voters"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    voter: Mapped[str] = mapped_column(String(64), primary_key=True)
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PairCode(db.Model):
    """A one-time code a tablet exchanges for a fresh device key (``POST /api/v1/devices/pair``).

    Six characters typed on a tablet, so only its hash is kept, it lives 10 minutes and
    works once (``used_at``); ``issued_by`` is the admin's username, for the 操作日志.
    """

    __tablename__ = "device_pair_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    device: Mapped[Device] = relationship()


class User(db.Model):
    """A staff account: role and department decide what it may see and do."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department] = relationship()

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class PasswordLink(db.Model):
    """A one-time set-password link for a staff user (new, or a reset by an admin): only
    its token's hash is kept; it works once and until ``expires_at``."""

    __tablename__ = "password_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ApiToken(db.Model):
    """A staff bearer token; only its hash is stored, and it expires or is revoked."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
