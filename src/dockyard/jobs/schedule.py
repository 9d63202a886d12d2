"""When a cron schedule fires next, read the way busybox crond reads it (five fields; a job
runs when the minute, hour and month match and the day of month or the weekday matches,
either one when both are restricted)."""

from __future__ import annotations

from datetime import datetime, timedelta

from dockyard.values import CRON_FIELDS


def _field(text: str, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        spec, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            a, b = spec.split("-", 1)
            first, last = int(a), int(b)
        else:
            first = int(spec)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return out


def next_run(schedule: str, after: datetime) -> datetime | None:
    """The first minute strictly after ``after`` (an aware datetime, in the schedule's time
    zone) the schedule fires; None when it never does within eight years (Feb 30th)."""
    fields = schedule.split()
    minutes, hours, days, months, weekdays = (
        _field(text, low, high) for text, (_, low, high) in zip(fields, CRON_FIELDS, strict=True))
    weekdays = {d % 7 for d in weekdays}  # 7 is Sunday too
    day_any, weekday_any = fields[2] == "*", fields[4] == "*"
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = after + timedelta(days=366 * 8)
    while t < limit:
        if t.month not in months:
            t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        day_ok = t.day in days
        weekday_ok = (t.isoweekday() % 7) in weekdays
        if day_any or weekday_any:
            matches = day_ok and weekday_ok
        else:
            matches = day_ok or weekday_ok
        if not matches:
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if t.hour not in hours:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        if t.minute not in minutes:
            t += timedelta(minutes=1)
            continue
        return t
    return None
