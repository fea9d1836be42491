"""Phone models: the token config files use, the family, and how many lines each has.

The model token is what the phone's User-Agent carries without the underscore
(``VVX_410`` -> ``VVX410``) and what the master file names in
``APPLICATION_<MODEL>`` (SPEC §2, research §1.2). The line count bounds the
``reg.N`` registrations an inventory entry may carry (``line1_*`` ... ``lineN_*``
CSV columns); the figures are the registrations each model's datasheet lists.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from phoneprov.errors import InputError


class Family(enum.StrEnum):
    """The family names the phones use in their User-Agent (``Polycom<Family>-...``)."""

    SOUNDPOINT_IP = "SoundPointIP"
    SOUNDSTATION_IP = "SoundStationIP"
    VVX = "VVX"
    TRIO = "RealPresenceTrio"


@dataclass(frozen=True, slots=True)
class PhoneModel:
    token: str  # VVX410, SPIP550, Trio8800
    family: Family
    lines: int


def _models() -> dict[str, PhoneModel]:
    table: list[tuple[Family, int, tuple[str, ...]]] = [
        (Family.SOUNDPOINT_IP, 2, ("SPIP321", "SPIP331", "SPIP335")),
        (Family.SOUNDPOINT_IP, 3, ("SPIP450",)),
        (Family.SOUNDPOINT_IP, 4, ("SPIP550", "SPIP560")),
        (Family.SOUNDPOINT_IP, 6, ("SPIP650", "SPIP670")),
        (Family.SOUNDSTATION_IP, 1, ("SSIP5000", "SSIP6000", "SSIP7000", "SSDuo")),
        (Family.VVX, 1, ("VVX101",)),
        (Family.VVX, 2, ("VVX150", "VVX201")),
        (Family.VVX, 4, ("VVX250",)),
        (Family.VVX, 6, ("VVX300", "VVX301", "VVX310", "VVX311", "VVX350", "VVX1500")),
        (Family.VVX, 12, ("VVX400", "VVX401", "VVX410", "VVX411", "VVX450", "VVX500", "VVX501")),
        (Family.VVX, 16, ("VVX600", "VVX601")),
        (Family.TRIO, 1, ("Trio8300", "Trio8500", "Trio8800", "TrioC60")),
    ]
    return {
        token.lower(): PhoneModel(token, family, lines)
        for family, lines, tokens in table
        for token in tokens
    }


MODELS: dict[str, PhoneModel] = _models()
MAX_LINES = max(model.lines for model in MODELS.values())


def find_model(text: str) -> PhoneModel:
    """The model named by ``text`` (``VVX410``, ``VVX_410``, ``vvx 410``, ``Trio 8800``).

    Raises InputError naming the value and the known models of its family.
    """
    key = re.sub(r"[\s_\-]", "", text).lower()
    model = MODELS.get(key)
    if model is not None:
        return model
    prefix = re.match(r"[a-z]+", key)
    similar = sorted(m.token for k, m in MODELS.items() if prefix and k.startswith(prefix.group(0)))
    raise InputError(
        f"{text!r} is not a phone model phoneprov knows",
        "Known models: "
        + ", ".join(similar or sorted(m.token for m in MODELS.values()))
        + " (write them as the phone's User-Agent does, without the underscore).",
    )
