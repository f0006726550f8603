"""Holiday calendars for the ``holiday`` price driver, from the holidays package.

The setting ``holiday_calendar`` names a country (ISO 3166-1 alpha-2, "FI") or a country and
subdivision ("DE-BY"); empty means no day is a holiday.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

import holidays


class CalendarError(ValueError):
    pass


@functools.lru_cache(maxsize=16)
def holiday_checker(spec: str) -> Callable[[dt.date], bool]:
    if not spec:
        return lambda _day: False
    country, _, subdivision = spec.partition("-")
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision or None)
    except (NotImplementedError, KeyError) as exc:
        raise CalendarError(f"holiday_calendar {spec!r}: {exc}") from None
    return calendar.__contains__
