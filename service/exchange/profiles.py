"""Exchange profiles (SPEC §8): how hcp's records are coded for one upstream platform.

A profile is a versioned data file in ``service/exchange/profiles/`` (``NAME.json``):
``rating`` and ``case`` map each of the platform's field names to one of hcp's neutral
fields (``channel``, ``level``, ``rated_at``, …); ``codes`` holds, per neutral field, the
code table from hcp's value to the platform's code; ``times`` lists the fields written
with ``time_format`` in Asia/Shanghai; ``required`` the neutral fields a record cannot
go without. A new province is a new file — no code.

Every mapping is explicit, both ways. A value with no code in the profile, or a
required field that is empty, raises ``Held`` with the reasons: such a record is held
back and listed, never sent mis-coded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from models.clock import SHANGHAI

DIRECTORY = Path(__file__).with_name("profiles")
KINDS = ("rating", "case")


_PLAIN, _TIME, _CODE = "plain", "time", "code"  # how encode() writes a field
_REQUIRED = "required"  # steps' key of the required fields, in order


class Held(Exception):
    """A record that cannot be coded in a profile; ``reasons`` say which values lack a code."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class UnknownProfile(LookupError):
    """No profile data file of that name."""


def _key(value) -> str:
    """A neutral value as a code table's key: JSON object keys are strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value(key: str):
    """A code table's key back as hcp's value: levels and counts are ints, flags bools."""
    if key in ("true", "false"):
        return key == "true"
    return int(key) if key.isdigit() else key


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    title: str
    time_format: str
    fields: dict[str, dict[str, str]]  # kind → {platform field: neutral field}
    codes: dict[str, dict[str, str]]  # neutral field → {hcp value: platform code}
    times: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    decodes: dict[str, dict[str, str]] = field(default_factory=dict)  # neutral field → {code: hcp value}
    # kind → ((platform field, neutral field, how, code table), …): encode()'s plan, made once.
    steps: dict[str, tuple] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        self.steps[_REQUIRED] = tuple(sorted(self.required))
        for kind, fields in self.fields.items():
            self.steps[kind] = tuple(
                (platform_field, neutral, _TIME if neutral in self.times else _CODE if neutral in self.codes
                 else _PLAIN, self.codes.get(neutral)) for platform_field, neutral in fields.items())

    def code(self, neutral: str, value):
        """``value`` of neutral field ``neutral`` in this profile's code; KeyError if it has none."""
        return self.codes[neutral][_key(value)]

    def decode(self, neutral: str, code):
        """The hcp value behind the platform's ``code`` (an int, bool or str); KeyError if none."""
        return _value(self.decodes[neutral][str(code)])

    def format_time(self, moment: datetime) -> str:
        """A time as the profile writes it: Asia/Shanghai local time, or ISO 8601 with offset ("iso")."""
        local = moment.astimezone(SHANGHAI)
        return local.isoformat() if self.time_format == "iso" else local.strftime(self.time_format)

    def parse_time(self, raw) -> datetime:
        """A time as the profile writes it (a local time without offset is Asia/Shanghai's); ValueError if not."""
        if self.time_format == "iso":
            moment = datetime.fromisoformat(str(raw))
            if moment.tzinfo is None:
                raise ValueError("a time needs its offset, e.g. +08:00")
            return moment
        return datetime.strptime(str(raw), self.time_format).replace(tzinfo=SHANGHAI)

    def encode(self, kind: str, record: dict) -> dict:
        """The platform's shape of one neutral ``record`` of ``kind``; Held if a value has no code."""
        out, held = {}, None
        for name in self.steps[_REQUIRED]:
            if record.get(name) in (None, ""):
                held = (held or []) + [f"{name} is not set"]
        for platform_field, neutral, how, table in self.steps[kind]:
            value = record.get(neutral)
            if value is None or how is _PLAIN:
                out[platform_field] = value
            elif how is _TIME:
                out[platform_field] = self.format_time(value)
            elif isinstance(value, list):
                coded = [table.get(_key(one)) for one in value]
                held = self._missing(held, neutral, value, coded)
                out[platform_field] = coded
            else:
                code = out[platform_field] = table.get(_key(value))
                if code is None:
                    held = self._missing(held, neutral, [value], [code])
        if held:
            raise Held(held)
        return out

    def _missing(self, held, neutral: str, values: list, coded: list):
        missing = [f"{neutral} {_key(v)} has no code in profile {self.name}"
                   for v, c in zip(values, coded) if c is None]
        return (held or []) + missing if missing else held

    def decode_record(self, kind: str, data: dict) -> tuple[dict, dict]:
        """A platform record back to neutral fields: (values, errors by the platform's field name)."""
        out, errors = {}, {}
        for platform_field, neutral in self.fields[kind].items():
            raw = data.get(platform_field)
            if raw is None or raw == "":
                continue
            try:
                if neutral in self.times:
                    out[neutral] = self.parse_time(raw)
                elif neutral in self.codes:
                    if isinstance(raw, list):
                        out[neutral] = [self.decode(neutral, one) for one in raw]
                    else:
                        out[neutral] = self.decode(neutral, raw)
                else:
                    out[neutral] = raw
            except (KeyError, ValueError, TypeError):
                errors[platform_field] = [f"{raw!r} is not a {platform_field} of profile {self.name}"]
        return out, errors


def _build(data: dict) -> Profile:
    codes = {name: {str(k): str(v) for k, v in table.items()} for name, table in data["codes"].items()}
    decodes = {}
    for name, table in codes.items():
        reverse = {v: k for k, v in table.items()}
        if len(reverse) != len(table):
            raise ValueError(f"profile {data['name']}: two values share a code in {name}")
        decodes[name] = reverse
    return Profile(name=data["name"], version=str(data["version"]), title=data.get("title", data["name"]),
                   time_format=data["time_format"], fields={k: dict(data[k]) for k in KINDS},
                   codes=codes, times=frozenset(data.get("times", ())),
                   required=frozenset(data.get("required", ())), decodes=decodes)


def names() -> list[str]:
    """The profiles shipped, by file name."""
    return sorted(p.stem for p in DIRECTORY.glob("*.json"))


@lru_cache(maxsize=None)
def load(name: str) -> Profile:
    """The profile ``name`` (a data file of DIRECTORY); UnknownProfile if there is none."""
    path = DIRECTORY / f"{name}.json"
    if not name.isidentifier() or not path.is_file():
        raise UnknownProfile(f"no exchange profile {name!r}; one of {', '.join(names())}")
    profile = _build(json.loads(path.read_text(encoding="utf-8")))
    if profile.name != name:
        raise ValueError(f"{path}: name {profile.name!r} differs from the file name")
    return profile
