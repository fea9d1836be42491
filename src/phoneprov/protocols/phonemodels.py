"""Phone models: the token config files use, the family, and how many lines each has.

The model token is what the phone's User-Agent carries without the underscore
(``VVX_410`` -> ``VVX410``) and what the master file names in
``APPLICATION_<MODEL>`` (SPEC §2, research §1.2). The line count bounds the
``reg.N`` registrations an inventory entry may carry (``line1_*`` ... ``lineN_*``
CSV columns); the figures are the registrations each model's datasheet lists
(for the Edge E and CCX phones, whose datasheets we could not consult, the
line-key count: inferred).

``part`` is the firmware part number the phone prefixes to ``APP_FILE_PATH``
(``<part>.sip.ld``, research §2.3), where a public source gives it: the VVX
and SoundPoint figures are those of the poly_py_tools model table
(``tests/provision/test_model_meta.py``) and of Polycom's own firmware zips
(``3111-48450-001.sip.ld`` is the VVX 411 image), the Trio 8800's the image
name in its UC Software 5.7.1 release zip. An empty part: the phone asks for
the combined image only.
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
    EDGE = "Edge"  # "PolyEdge-Edge_E450-UA/..."
    CCX = "CCX"  # "PolyCCX-CCX_600-UA/..."


@dataclass(frozen=True, slots=True)
class PhoneModel:
    token: str  # VVX410, SPIP550, Trio8800
    family: Family
    lines: int
    part: str = ""  # firmware part number, "" when no source gives it


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
        (Family.EDGE, 2, ("EdgeE100", "EdgeE220")),
        (Family.EDGE, 8, ("EdgeE300", "EdgeE320", "EdgeE350")),
        (Family.EDGE, 16, ("EdgeE400", "EdgeE450", "EdgeE500", "EdgeE550")),
        (Family.CCX, 24, ("CCX350", "CCX400", "CCX500", "CCX505", "CCX600", "CCX700")),
    ]
    return {
        token.lower(): PhoneModel(token, family, lines, PART_NUMBERS.get(token, ""))
        for family, lines, tokens in table
        for token in tokens
    }


PART_NUMBERS: dict[str, str] = {
    "SPIP321": "2345-12360-001",
    "SPIP331": "2345-12365-001",
    "SPIP335": "2345-12375-001",
    "SPIP450": "2345-12450-001",
    "SPIP550": "2345-12500-001",
    "SPIP560": "2345-12560-001",
    "SPIP650": "2345-12600-001",
    "SPIP670": "2345-12670-001",
    "SSIP5000": "3111-30900-001",
    "SSIP6000": "3111-15600-001",
    "SSIP7000": "3111-40000-001",
    "VVX101": "3111-40250-001",
    "VVX150": "3111-48810-001",
    "VVX201": "3111-40450-001",
    "VVX250": "3111-48820-001",
    "VVX300": "3111-46135-002",
    "VVX301": "3111-48300-001",
    "VVX310": "3111-46161-001",
    "VVX311": "3111-48350-001",
    "VVX350": "3111-48830-001",
    "VVX400": "3111-46157-002",
    "VVX401": "3111-48400-001",
    "VVX410": "3111-46162-001",
    "VVX411": "3111-48450-001",
    "VVX450": "3111-48840-001",
    "VVX500": "3111-44500-001",
    "VVX501": "3111-48500-001",
    "VVX600": "3111-44600-001",
    "VVX601": "3111-48600-001",
    "VVX1500": "2345-17960-001",
    "Trio8800": "3111-65290-001",
}


MODELS: dict[str, PhoneModel] = _models()
MAX_LINES = max(model.lines for model in MODELS.values())


def known_model(token: str) -> PhoneModel | None:
    """The model a User-Agent's token names (``EdgeE450``), or None for one we do not know."""
    return MODELS.get(re.sub(r"[\s_\-]", "", token).lower())


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
