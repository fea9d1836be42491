"""Who the simulated phone is: MAC, model, part number, firmware versions, User-Agent.

Pure values. Part numbers are the per-model firmware image prefixes phones ask
for (``<part>.sip.ld``, research/polycom_protocol.md §2.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.polycom import Stage, user_agent_string


@dataclass(frozen=True, slots=True)
class ModelInfo:
    family: str  # as in the User-Agent: VVX, SoundPointIP, RealPresenceTrio
    ua_model: str  # as in the User-Agent: VVX_410
    part_number: str


# Models with their firmware part numbers as seen in real requests (VVX 410/500:
# research/polycom_protocol.md §2.2-2.3). Others are accepted with no part number:
# such a phone asks only for the combined image; set ``Phone.part`` to give one.
MODELS: dict[str, ModelInfo] = {
    "VVX410": ModelInfo("VVX", "VVX_410", "3111-46162-001"),
    "VVX500": ModelInfo("VVX", "VVX_500", "3111-44500-001"),
    "VVX400": ModelInfo("VVX", "VVX_400", ""),
    "VVX450": ModelInfo("VVX", "VVX_450", ""),
    "SPIP550": ModelInfo("SoundPointIP", "SPIP_550", ""),
    "SSIP6000": ModelInfo("SoundStationIP", "SSIP_6000", ""),
    "Trio8800": ModelInfo("RealPresenceTrio", "Trio_8800", ""),
}


@dataclass(frozen=True, slots=True)
class Phone:
    """One simulated phone."""

    mac: MacAddress
    model: str = "VVX410"  # token as in master files
    app_version: str = "5.9.5.0614"
    updater_version: str = "5.9.7.47435"
    tag_serial: bool = False  # device.prov.tagSerialNo: "(SN:<mac>)" in the User-Agent
    part: str = ""  # firmware part number; empty: the model's known one, if any

    @property
    def info(self) -> ModelInfo:
        return MODELS[self.model]

    @property
    def part_number(self) -> str:
        return self.part or self.info.part_number

    def user_agent(self, stage: Stage) -> str:
        """The User-Agent this phone sends in ``stage`` (the Updater reports its own version)."""
        version = self.updater_version if stage is Stage.UPDATER else self.app_version
        return user_agent_string(
            self.info.family,
            self.info.ua_model,
            version,
            stage,
            self.mac if self.tag_serial else None,
        )


def model_token(text: str) -> str:
    """Return the model token for ``VVX410``, ``vvx_410`` or ``VVX 410``; InputError otherwise."""
    wanted = text.replace("_", "").replace(" ", "").replace("-", "").lower()
    for token in MODELS:
        if token.lower() == wanted:
            return token
    raise InputError(
        f"unknown phone model {text!r}",
        f"Use one of: {', '.join(MODELS)}.",
    )
