"""Who the simulated phone is: MAC, model, part number, firmware versions, User-Agent.

Pure values. Part numbers are the per-model firmware image prefixes phones ask
for (``<part>.sip.ld``, research/polycom_protocol.md §2.3): the model table's
(``phonemodels.PART_NUMBERS``, with its sources), VVX 400/401 included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from phoneprov.model import MacAddress
from phoneprov.protocols.phonemodels import find_model
from phoneprov.protocols.polycom import Stage, user_agent_string


def ua_model(token: str) -> str:
    """The model as the User-Agent spells it: ``VVX410`` -> ``VVX_410`` (research §4.2),
    ``EdgeE450`` -> ``Edge_E450``, ``TrioC60`` -> ``Trio_C60``."""
    for family in ("Edge", "Trio"):
        if token.startswith(family) and len(token) > len(family):
            return f"{family}_{token[len(family) :]}"
    match = re.fullmatch(r"([A-Za-z]+)(\d\w*)", token)
    return f"{match.group(1)}_{match.group(2)}" if match else token


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
    def part_number(self) -> str:
        return self.part or find_model(self.model).part

    def user_agent(self, stage: Stage) -> str:
        """The User-Agent this phone sends in ``stage`` (the Updater reports its own version)."""
        version = self.updater_version if stage is Stage.UPDATER else self.app_version
        return user_agent_string(
            str(find_model(self.model).family),
            ua_model(self.model),
            version,
            stage,
            self.mac if self.tag_serial else None,
        )


def model_token(text: str) -> str:
    """Return the model token for ``VVX410``, ``vvx_410`` or ``VVX 410``; InputError otherwise."""
    return find_model(text.replace(" ", "").replace("-", "")).token
