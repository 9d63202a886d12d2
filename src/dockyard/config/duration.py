"""Durations written the way people write them: "30s", "2m", "1m30s", "500ms", "1h".

Counted in whole milliseconds (a finer duration is refused, not rounded), stored as seconds
(float) so the rest of the code does arithmetic, and printed back in the same short form,
exactly: what ``dockyard config`` prints parses to the same value.

Each field has bounds (``duration(low, high)``): a health-check interval of 0 or an SSH
timeout of 68 years is refused when the file is read, with the key and line, instead of
failing later on the server. Bounds are checked on the integer count of milliseconds, before
any float conversion, so no value (a 400-digit string, 1e308, inf, nan) can overflow.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
# ASCII digits only: \d also takes Arabic-Indic digits, which float() then accepts
_PART = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,9}))?(ms|s|m|h|d)")
ACCEPTED = 'a number with a unit: ms, s, m, h or d, e.g. "30s", "2m", "1m30s", "500ms"'
#: No duration anywhere may exceed this (a year); fields have tighter bounds.
CEILING_MS = 365 * 86_400_000


def parse_ms(value: Any) -> int:
    """A duration in whole milliseconds; bare numbers are seconds. ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration, {ACCEPTED}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative; write {ACCEPTED}")
        if value > CEILING_MS // 1000:
            raise ValueError(f"{_short(value)} seconds is longer than a year; write {ACCEPTED}")
        return value * 1000
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value} is not a duration; write {ACCEPTED}")
        if value < 0:
            raise ValueError(f"must not be negative; write {ACCEPTED}")
        if value > CEILING_MS / 1000:
            raise ValueError(f"{_short(value)} seconds is longer than a year; write {ACCEPTED}")
        return _whole_ms(Decimal(repr(value)) * 1000, str(value))
    text = value.strip().replace(" ", "")
    if len(text) > 64:
        raise ValueError(f"{_short(value)} is not a duration; write {ACCEPTED}")
    pos = 0
    total = Decimal(0)
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        number = Decimal(f"{match.group(1)}.{match.group(2) or '0'}")
        total += number * _UNITS_MS[match.group(3)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{_short(value)} is not a duration; write {ACCEPTED}")
    if total > CEILING_MS:
        raise ValueError(f"{_short(value)} is longer than a year; write {ACCEPTED}")
    return _whole_ms(total, repr(value))


def _whole_ms(ms: Decimal, shown: str) -> int:
    try:
        whole = int(ms.to_integral_value())
    except (InvalidOperation, OverflowError):
        raise ValueError(f"{shown} is not a duration; write {ACCEPTED}") from None
    if abs(ms - whole) > Decimal("0.000001"):
        raise ValueError(f"{shown} is finer than a millisecond, the smallest step a duration "
                         "takes; write e.g. \"1ms\" or \"0.5s\"")
    return whole


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "…"


def parse_duration(value: Any) -> float:
    """Seconds, for the code that uses durations."""
    return parse_ms(value) / 1000


def format_ms(ms: int) -> str:
    """The shortest exact form: 500 -> "500ms", 90_000 -> "1m30s", 3_600_000 -> "1h"."""
    if ms == 0:
        return "0s"
    out = ""
    for unit in ("h", "m", "s", "ms"):
        size = _UNITS_MS[unit]
        count, ms = divmod(ms, size)
        if count:
            out += f"{count}{unit}"
    return out


def format_duration(seconds: float) -> str:
    return format_ms(round(seconds * 1000))


def duration(low: str | float = 0, high: str | float = "1d") -> Any:
    """A Duration type bounded to [low, high] (both inclusive)."""
    low_ms, high_ms = parse_ms(low), parse_ms(high)

    def check(value: Any) -> float:
        ms = parse_ms(value)
        if ms < low_ms or ms > high_ms:
            if low_ms > 0 and ms < low_ms:
                raise ValueError(f"{format_ms(ms)} is too short; write at least "
                                 f"\"{format_ms(low_ms)}\" (at most \"{format_ms(high_ms)}\")")
            raise ValueError(f"{format_ms(ms)} is too long; write at most "
                             f"\"{format_ms(high_ms)}\"")
        return ms / 1000

    return Annotated[
        float,
        BeforeValidator(check),
        PlainSerializer(format_duration, return_type=str),
        WithJsonSchema({"type": "string", "format": "duration"}),
        DurationBounds(low_ms, high_ms),
    ]


class DurationBounds:
    """Marks a field as a duration (docs/config.md says "duration" and its range)."""

    def __init__(self, low_ms: int, high_ms: int) -> None:
        self.low_ms = low_ms
        self.high_ms = high_ms

    def describe(self) -> str:
        return f"{format_ms(self.low_ms)} to {format_ms(self.high_ms)}"


Duration = duration(0, "1d")
