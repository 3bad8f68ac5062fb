"""Money: what a paid call is estimated to cost, and the calendar windows budgets are counted in.

An estimate comes from the configured price table (``SORA_PRICES``, USD per second of video per model, and the
key ``character`` for USD per character task), never from the gateway, which states no prices. A video whose
duration is left unset is priced at the shortest duration its model allows (what the gateway renders by default)
and says so. Budgets count estimates in the calendar day and month of the machine's local time zone (``TZ``).
"""

import math
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sora_mcp.create_requests import DURATIONS, REMIX_DURATIONS, CharacterRequest, CreateRequest, RemixRequest

DEFAULT_PRICES: dict[str, float] = {"sora-2": 0.10, "sora-2-pro": 0.30}
"""USD per second of video: the public list prices of OpenAI's Sora-2 API (sora-2 720p, sora-2-pro 720p)."""
CHARACTER_PRICE = "character"
"""The ``SORA_PRICES`` key of the price of one character task (unknown unless set)."""
ESTIMATE_NOTE = (
    "Estimates come from the configured price table (SORA_PRICES), not from the gateway's bill: the gateway "
    "states no prices, and what it charges may differ."
)


class Estimate(NamedTuple):
    """The estimated cost of one paid request."""

    usd: float | None
    """USD, rounded to the cent's hundredth; None when the table has no price for it."""
    model: str
    seconds: int | None
    """The seconds of video priced (None for a character)."""
    duration_assumed: bool
    """The request left the duration unset: priced at the model's shortest."""

    def describe(self) -> str:
        """For a hint or a question: "$1.00 for 10 s of sora-2"."""
        if self.usd is None:
            what = "character tasks" if self.seconds is None else self.model
            return f"unknown (SORA_PRICES has no price for {what})"
        if self.seconds is None:
            return f"{usd(self.usd)} for one character task"
        assumed = " (the shortest duration; none was given)" if self.duration_assumed else ""
        return f"{usd(self.usd)} for {self.seconds} s of {self.model}{assumed}"


def estimate(request: CreateRequest, prices: dict[str, float]) -> Estimate:
    """What ``request`` is estimated to cost under ``prices``."""
    if isinstance(request, CharacterRequest):
        price = prices.get(CHARACTER_PRICE)
        return Estimate(
            usd=None if price is None else round(price, 4), model=request.model, seconds=None, duration_assumed=False
        )
    allowed = REMIX_DURATIONS if isinstance(request, RemixRequest) else DURATIONS
    seconds = request.duration or min(allowed[request.model])
    per_second = prices.get(request.model)
    cost = None if per_second is None else round(per_second * seconds, 4)
    return Estimate(usd=cost, model=request.model, seconds=seconds, duration_assumed=request.duration is None)


def over_budget(spent: float, estimate: float, limit: float) -> bool:
    """Whether a call estimated at ``estimate`` takes a spend of ``spent`` over ``limit`` (float sums of cents
    may land a hair above an exact limit, which still fits)."""
    return spent + estimate > limit + 1e-9


def usd(amount: float) -> str:
    """``$1.00``; amounts under a cent keep their digits (``$0.004``)."""
    return f"${amount:.2f}" if amount == 0 or abs(amount) >= 0.01 else f"${amount:.4f}".rstrip("0")


def check_prices(value: Any) -> dict[str, float]:
    """``SORA_PRICES``: a JSON object of name -> non-negative USD, merged over :data:`DEFAULT_PRICES`."""
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object such as {"sora-2": 0.12, "sora-2-pro": 0.35, "character": 0.05}')
    prices = dict(DEFAULT_PRICES)
    for name, price in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError("every key must be a model name (or 'character')")
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price < 0:
            raise ValueError(f"the price of {name!r} must be a number of USD, 0 or more, got {price!r}")
        prices[name.strip()] = float(price)
    return prices


class Period(NamedTuple):
    """A budget's calendar window in local time: ``[start, end)`` in Unix seconds."""

    name: str
    """``today`` or ``this month``."""
    start: float
    end: float


def day_and_month(now: float) -> tuple[Period, Period]:
    """The local calendar day and month containing ``now``."""
    local = datetime.fromtimestamp(now)
    midnight = _local_midnight(local)
    next_midnight = _local_midnight(local + timedelta(days=1))
    first = _local_midnight(local.replace(day=1))
    next_first = _local_midnight((local.replace(day=1) + timedelta(days=32)).replace(day=1))
    return (
        Period("today", midnight.timestamp(), next_midnight.timestamp()),
        Period("this month", first.timestamp(), next_first.timestamp()),
    )


def _local_midnight(moment: datetime) -> datetime:
    """The first moment of the naive local ``moment``'s date, with that date's own UTC offset. Where DST starts at
    midnight (Santiago, Havana, Beirut...) 00:00 does not exist and the day starts at 01:00; taken naively, the
    day would end an hour early and a budget would not see that hour's spend."""
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    candidates = [start.replace(fold=fold).timestamp() for fold in (0, 1)]
    same_day = [stamp for stamp in candidates if datetime.fromtimestamp(stamp).date() == start.date()]
    return datetime.fromtimestamp(min(same_day or candidates)).astimezone()
