"""Time zones and timestamps: Camtrap DP wants every time with its UTC offset, cameras write none.

A camera's EXIF capture time (DateTimeOriginal) is its clock's local time with no zone, so each
deployment needs one: its ``timezone`` column, else the offset its ``deploymentStart`` or
``deploymentEnd`` was written with, else ``--timezone``. A zone is a fixed offset (``+03:00``,
``-0500``, ``Z``, ``UTC``) or an IANA name (``Africa/Nairobi``, daylight saving applied per time).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from bioclip_edge.errors import UserError

OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")
ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y:%m:%d %H:%M:%S", "%Y-%m-%d")


class TimeError(UserError, ValueError):
    """A time zone or a time the command cannot read."""


def parse_zone(text: str, where: str) -> _dt.tzinfo:
    """A fixed offset or an IANA zone name; ``where`` names the option or cell for the message."""
    text = text.strip()
    if text.upper() in ("Z", "UTC", "GMT"):
        return _dt.timezone.utc
    match = OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        delta = _dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta > _dt.timedelta(hours=14):
            raise TimeError(f"{where} {text!r}: an offset is at most 14 hours, e.g. +03:00")
        return _dt.timezone(-delta if sign == "-" else delta)
    try:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TimeError(f"{where} {text!r}: not a time zone; give a UTC offset such as +03:00 or -05:00, or a zone "
                        "name such as Africa/Nairobi") from None


def parse_time(text: str, where: str) -> _dt.datetime:
    """An ISO 8601 time, with or without its offset (``2026-01-05T08:00:00+03:00``, ``2026-01-05 08:00``)."""
    text = text.strip()
    try:
        return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    for fmt in ISO_FORMATS:
        try:
            return _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise TimeError(f"{where} {text!r}: not a date and time; write it as YYYY-MM-DDThh:mm:ss, with its offset "
                    "(e.g. 2026-01-05T08:00:00+03:00) or in the deployment's time zone")


def localize(when: _dt.datetime, zone: _dt.tzinfo) -> _dt.datetime:
    """``when`` in ``zone``: a naive time is read as the zone's local time, an aware one converted."""
    if when.tzinfo is None:
        return when.replace(tzinfo=zone)
    return when.astimezone(zone)


def iso(when: _dt.datetime) -> str:
    """Camtrap DP's ``%Y-%m-%dT%H:%M:%S%z`` written as ISO 8601 (``+03:00``, UTC as ``Z``)."""
    text = when.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def file_time(stat_mtime: float, zone: _dt.tzinfo) -> _dt.datetime:
    """A file's modification time as an instant, written in the deployment's zone."""
    return _dt.datetime.fromtimestamp(stat_mtime, tz=zone)


def offset_of(when: Any) -> _dt.tzinfo | None:
    return when.tzinfo if isinstance(when, _dt.datetime) and when.tzinfo is not None else None
