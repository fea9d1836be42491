"""What a device is told, and the firmware-loop guard (Lync/SfB device update).

Pure functions over a :class:`~phoneprov.provisioning.lync.catalog.Catalog` and the
request history; the server stores and flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phoneprov.protocols.lync import DeviceRequest, Offer, Side, compare_versions, files_path
from phoneprov.provisioning.lync.catalog import Catalog

LOOP_THRESHOLD = 3  # the same offer this many times in a row, never installed = a loop


@dataclass(frozen=True, slots=True)
class Answer:
    offers: tuple[Offer, ...]
    outcome: str  # update | up-to-date | newer | unknown

    @property
    def offered(self) -> str:
        return ",".join(f"{o.module}={o.version}" for o in self.offers if o.base_url)


def decide(
    catalog: Catalog, request: DeviceRequest, group: str, *, internal_base: str, external_base: str
) -> Answer:
    """What to tell the device: per module, update (with URLs), stay, or nothing.

    A device on an older version than its group's gets the URLs; equal or newer
    (a phone updated elsewhere) is told to stay: phoneprov never pushes a downgrade
    by itself. Unknown devices, and requests missing part of the key, get no modules.
    """
    if not request.complete:
        return Answer((), "unknown")
    packages = catalog.resolve(request.key, group)
    if not packages:
        return Answer((), "unknown")
    offers: list[Offer] = []
    outcomes: set[str] = set()
    for package in sorted(packages, key=lambda p: p.module):
        reported = request.reported(package.module)
        order = compare_versions(reported, package.version) if reported else -1
        if order < 0:
            outcomes.add("update")
            offers.append(
                Offer(
                    package.module,
                    package.primary.name,
                    package.version,
                    internal_base.rstrip("/")
                    + files_path(Side.INTERNAL, package.key, package.version, package.module),
                    external_base.rstrip("/")
                    + files_path(Side.EXTERNAL, package.key, package.version, package.module),
                )
            )
        else:
            outcomes.add("newer" if order > 0 else "up-to-date")
            offers.append(Offer(package.module, package.primary.name, package.version))
    outcome = next(o for o in ("update", "newer", "up-to-date") if o in outcomes)
    return Answer(tuple(offers), outcome)


def reported_text(request: DeviceRequest) -> str:
    return ",".join(f"{m.name}={m.version}" for m in request.modules)


def is_looping(history: Iterable[tuple[str, str]], threshold: int = LOOP_THRESHOLD) -> bool:
    """True when the latest ``threshold`` (reported, offered) pairs, newest first, all
    offered the same non-empty update and the device never reported running it.

    That is the Lync-era firmware loop: the phone downloads the image, fails or is
    pushed back (by a provisioning server with a different ``APP_FILE_PATH``), and asks again.
    """
    latest = list(history)[:threshold]
    if len(latest) < threshold:
        return False
    offers = {offered for _, offered in latest}
    if len(offers) != 1 or not next(iter(offers)):
        return False
    wanted = set(next(iter(offers)).split(","))
    return not any(wanted & set(reported.split(",")) for reported, _ in latest)
