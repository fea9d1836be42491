"""The three event timestamp formats of a Polycom phone log, decoded.

The SoundPoint IP / SoundStation IP administrator guides (SIP 1.4 to 3.x,
"Event Logging", ``log.render.stampStyle``; the same table in the CX5100 and
UC Software guides) define, with their own examples:

=====  =========================================  ============  ==================================
style  meaning                                    example       the guide's reading
=====  =========================================  ============  ==================================
0      seconds.milliseconds since boot            011511.006    1 hour, 15 minutes, 11.006 seconds
1      absolute time with minute resolution       0210281716    2002 October 28, 17:16
2      absolute time with seconds resolution      1028171642    October 28, 17:16:42
=====  =========================================  ============  ==================================

So style 0 is ``hhmmss.mmm`` (not a count of seconds), style 1 ``YYMMDDhhmm``
and style 2 ``MMDDhhmmss``. Styles 1 and 2 are both ten digits: a stamp that is
a valid date and time in only one of them settles the log's style (a phone
writes one style per log); an ambiguous stamp before that is read as style 2,
the style of every log excerpt Polycom's documents quote.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

Style = Literal["hhmmss.mmm", "YYMMDDhhmm", "MMDDhhmmss"]
BOOT: Style = "hhmmss.mmm"
MINUTES: Style = "YYMMDDhhmm"
SECONDS: Style = "MMDDhhmmss"
WALL_STYLES: tuple[Style, Style] = (SECONDS, MINUTES)


class Stamp(NamedTuple):
    """A header's timestamp: as written, its style, and a sort key within that style."""

    raw: str
    style: Style
    order: float

    @property
    def since_boot(self) -> float | None:
        """Seconds since boot for ``hhmmss.mmm`` stamps (``011511.006`` -> 4511.006)."""
        return self.order if self.style == BOOT else None

    @property
    def text(self) -> str:
        """The stamp for people: ``01:15:11.006`` (since boot), ``07-27 21:03:09``,
        or ``2002-10-28 17:16``."""
        raw = self.raw
        if self.style == BOOT:
            return f"{raw[0:2]}:{raw[2:4]}:{raw[4:10]}"
        if self.style == MINUTES:
            return f"20{raw[0:2]}-{raw[2:4]}-{raw[4:6]} {raw[6:8]}:{raw[8:10]}"
        return f"{raw[0:2]}-{raw[2:4]} {raw[4:6]}:{raw[6:8]}:{raw[8:10]}"

    def to_json(self) -> dict[str, str | float]:
        """``{"stamp", "style", "time"}`` plus ``seconds_since_boot`` for boot stamps."""
        data: dict[str, str | float] = {"stamp": self.raw, "style": self.style, "time": self.text}
        if self.since_boot is not None:
            data["seconds_since_boot"] = self.since_boot
        return data


def _wall_order(raw: str, style: Style) -> float | None:
    """Sort key of a ten-digit stamp read in ``style``; None when it is no real date and time."""
    a, b, c, d, e = (int(raw[i : i + 2]) for i in range(0, 10, 2))
    if style == SECONDS:
        year, month, day, hour, minute, second = 0, a, b, c, d, e
    else:
        year, month, day, hour, minute, second = a, b, c, d, e, 0
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    return float((((((year * 13 + month) * 32 + day) * 24 + hour) * 60 + minute) * 60) + second)


def wall_styles(raw: str) -> tuple[Style, ...]:
    """The wall-clock styles a ten-digit stamp is a valid date and time in."""
    return tuple(style for style in WALL_STYLES if _wall_order(raw, style) is not None)


def parse_stamp(raw: str, prefer: Style = SECONDS) -> Stamp | None:
    """Return the stamp ``raw`` (10 characters) is, else None.

    ``hhmmss.mmm`` is read as the guides define it; its minutes and seconds are
    not checked against 60, so a count written by another tool still sorts. A
    ten-digit stamp valid in both wall styles is read in ``prefer``.
    """
    if len(raw) != 10 or not raw.isascii():
        return None
    if raw[6] == ".":
        digits = raw[:6] + raw[7:]
        if not digits.isdigit():
            return None
        seconds = int(raw[0:2]) * 3600 + int(raw[2:4]) * 60 + int(raw[4:6]) + int(raw[7:10]) / 1000
        return Stamp(raw, BOOT, round(seconds, 3))
    if not raw.isdigit():
        return None
    order = _wall_order(raw, prefer)
    if order is not None:
        return Stamp(raw, prefer, order)
    other = MINUTES if prefer == SECONDS else SECONDS
    order = _wall_order(raw, other)
    return Stamp(raw, other, order) if order is not None else None
