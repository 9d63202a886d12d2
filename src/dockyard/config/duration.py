"""Durations written the way people write them: "30s", "2m", "1m30s", "500ms", "1h".

Stored as seconds (float) so the rest of the code does arithmetic, and printed back in the
same short form so ``dockyard config`` shows what the user would have written.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
ACCEPTED = 'a number with a unit: ms, s, m or h, e.g. "30s", "2m", "1m30s", "500ms"'


def parse_duration(value: Any) -> float:
    """Parse a duration; bare numbers are seconds. Raises ValueError with what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, {ACCEPTED}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"must not be negative; write {ACCEPTED}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, {ACCEPTED}")
    text = value.strip().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration; write {ACCEPTED}")
    return total


def format_duration(seconds: float) -> str:
    """The shortest common form: 0.5 -> "500ms", 90 -> "1m30s", 3600 -> "1h"."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or not out:
        out += f"{secs}s"
    return out


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
