"""Times in every bidtrace format: one strict RFC 3339 parser and one encoder.

RFC 3339 (section 5.6) narrowed so that every accepted text has one reading in every consumer:
`YYYY-MM-DDTHH:MM:SS`, then an optional fraction of exactly 3 or 6 digits (milliseconds or microseconds,
what the producers write and what a `datetime` holds), then `Z` or an offset `+HH:MM`/`-HH:MM`. Upper-case
`T` and `Z` only; seconds are required; no ISO 8601 variants (week or ordinal dates, basic format, a space
for `T`, hours only, `24:00`), no leap second `:60` (no consumer here can represent it) and no `-00:00`
(which RFC 3339 reserves for "offset unknown").

Two kinds of time:
- what a notary or a ledger writes (a receipt's or entry's `received_at`, a submitter's `registered_at` and
  `revoked_at`, a manifest's `created_at`, an anchor's `anchored_at`, a ledger head's `attested_at`) is in UTC
  and in exactly the encoder's form: `YYYY-MM-DDTHH:MM:SS.ffffffZ` (`parse_utc`);
- what a submitter writes in a record (`occurred_at`, a segment's `start`/`end`, a slot) may carry the local
  offset where it was captured (`parse_time`).
"""

import re
from datetime import UTC, datetime, timedelta, timezone

from verifier.errors import MalformedInput

_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{3}|[0-9]{6}))?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<hours>[0-9]{2}):(?P<minutes>[0-9]{2}))"
)
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
MAX_TIME_TEXT = 40


def parse_time(value: object, what: str) -> datetime:
    """`value` as an RFC 3339 time (see the module's grammar), with its offset; MalformedInput naming `what`."""
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        raise MalformedInput(f"{what} must be an RFC 3339 time, got {value!r:.60}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise MalformedInput(f"{what} is not an RFC 3339 time with seconds and a UTC offset (Z or +HH:MM), as "
                             f"2026-11-26T09:30:00+08:00 or 2026-11-26T01:30:00.000000Z: {value!r:.60}")
    if match["utc"]:
        zone = UTC
    else:
        hours, minutes = int(match["hours"]), int(match["minutes"])
        if hours > 23 or minutes > 59 or (hours == minutes == 0 and match["sign"] == "-"):
            raise MalformedInput(f"{what} has no valid UTC offset: {value!r:.60}")
        delta = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-delta if match["sign"] == "-" else delta)
    fraction = (match["fraction"] or "").ljust(6, "0")
    try:
        # datetime() itself, not strptime: no locale, and no first-call cost in a process that just started.
        return datetime(int(match["year"]), int(match["month"]), int(match["day"]), int(match["hour"]),
                        int(match["minute"]), int(match["second"]), int(fraction), tzinfo=zone)
    except ValueError as exc:
        raise MalformedInput(f"{what} is not a date and time of the calendar: {value!r:.60}") from exc


def parse_utc(value: object, what: str) -> datetime:
    """`value` as a time a notary or ledger wrote: UTC, microseconds, `Z`, exactly as `format_time` writes it."""
    parsed = parse_time(value, what)
    if not isinstance(value, str) or not _UTC.fullmatch(value):
        raise MalformedInput(f"{what} must be a UTC time with microseconds, as 2026-11-26T01:30:00.000000Z; "
                             f"got {value!r:.60}")
    return parsed


def format_time(moment: datetime) -> str:
    """The one encoding of a time: microseconds, and `Z` for UTC or the moment's own offset."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a time without a UTC offset has no RFC 3339 encoding")
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds")
    if offset == timedelta(0):
        return text + "Z"
    if offset % timedelta(minutes=1):
        raise ValueError(f"UTC offset {offset} is not a whole number of minutes")
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{text}{'-' if offset < timedelta(0) else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


def now_utc() -> str:
    """The current time as a notary writes it."""
    return format_time(datetime.now(UTC))


def now_local() -> str:
    """The current time with this machine's offset, as a device writes its capture times."""
    return format_time(datetime.now().astimezone())


def utc_text(value: object, what: str) -> str:
    """`value`, checked to be a time as a notary or ledger writes it, kept as the text that was signed."""
    parse_utc(value, what)
    assert isinstance(value, str)
    return value
