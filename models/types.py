"""Column types that behave the same on SQLite and PostgreSQL."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.types import TypeDecorator

# 64-bit ids on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime in and out; SQLite keeps no offset, so it is stored as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Clock:
    """The application's clock: the real time, unless a test has set it.

    Everything that depends on "now" (deadlines, red/yellow cards, the digest, the
    figures' open counts) asks ``utcnow()``, so a test freezes one moment with
    ``clock.set(moment)`` instead of sleeping until a threshold passes.
    """

    def __init__(self):
        self.frozen: datetime | None = None

    def set(self, moment: datetime | None) -> None:
        """Freeze the clock at an aware ``moment`` (None: back to the real time)."""
        if moment is not None and moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self.frozen = moment

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else datetime.now(timezone.utc)


clock = Clock()


def utcnow() -> datetime:
    """Now, in UTC, from the application's clock."""
    return clock.now()
