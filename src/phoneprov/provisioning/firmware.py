"""The firmware catalog: images stored once by sha256, versions assigned per model and group.

A phone asks for ``<part>.sip.ld``, then plain ``sip.ld``, and reads
``sip.ver`` (SPEC §2, research §2.3); it names itself by the model token in
its User-Agent. The version it gets is what a firmware rollout offers it
(``phoneprov rollout``: the target once its wave started, else its old
version), else its group's assignment when that version has an image for its
model, else its model's.
The master file points each assigned model at ``firmware/<version>/sip.ld``,
so both forms are answered: the versioned path and the plain root names.

Firmware loops (SPEC §9): a phone that fetches the same image again and again
without ever reporting that version in its Application-stage User-Agent is
fighting another update source (e.g. a Skype for Business device update
server). Its device record gets the ``firmware-loop`` flag.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from phoneprov.config import Settings
from phoneprov.errors import InputError
from phoneprov.model import MacAddress
from phoneprov.protocols.phonemodels import find_model
from phoneprov.provisioning import trail
from phoneprov.provisioning.inventory import check_name
from phoneprov.records import Assignment, ImageRecord, RolloutPin
from phoneprov.store import open_store
from phoneprov.store.base import FirmwareRepo, FleetActionRepo, InventoryRepo

LOOP_FLAG = "firmware-loop"
LOOP_THRESHOLD = 3  # fetches of one image without the phone reporting its version
LOOP_WINDOW = 24 * 3600.0  # seconds; fetches further apart start a new count
VERSION_DIR = "firmware"
_VERSION_RE = re.compile(r"[0-9][0-9A-Za-z_\-]*(\.[0-9A-Za-z_\-]+){0,5}")
_PART_RE = re.compile(r"\d{4}-\d{5}-\d{3}")
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FirmwareFile:
    """What to send for a firmware name: an image file on disk, or the sip.ver text."""

    version: str
    image: ImageRecord | None = None
    path: Path | None = None
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class AddedImage:
    """An image stored by ``add_firmware``; ``new`` is False when its bytes were there already."""

    image: ImageRecord
    new: bool


@dataclass(frozen=True, slots=True)
class FirmwareListing:
    """The catalog: every image, and the version each model and group runs."""

    images: tuple[ImageRecord, ...]
    assignments: tuple[Assignment, ...]


def check_version(text: str) -> str:
    if not _VERSION_RE.fullmatch(text) or len(text) > 32:
        raise InputError(
            f"version {text!r} is not a firmware version",
            "Write it as the phone reports it, e.g. 5.9.8.5760.",
        )
    return text


def check_part(text: str) -> str:
    if text and not _PART_RE.fullmatch(text):
        raise InputError(
            f"part number {text!r} is not in the form 3111-46162-001",
            "Use the part number on the phone's label (NNNN-NNNNN-NNN).",
        )
    return text


class FirmwareCatalog:
    """Firmware images in ``<site>/firmware`` and their rows in the store."""

    def __init__(
        self,
        blob_dir: Path,
        rows: FirmwareRepo,
        inventory: InventoryRepo,
        pins: FleetActionRepo | None = None,
    ) -> None:
        self.blob_dir = blob_dir
        self.rows = rows
        self.inventory = inventory
        self.pins = pins  # the rollouts' per-phone versions (None: assignments only)

    def blob(self, sha256: str) -> Path:
        return self.blob_dir / f"{sha256}.ld"

    def add(
        self, source: Path, version: str, *, models: Sequence[str] = (), part: str = ""
    ) -> tuple[ImageRecord, bool]:
        """Store ``source`` under its sha256 and record it for (version, part).

        Returns the record and whether the bytes were new (False: deduplicated).
        Raises InputError for a missing file or bad version, part or model.
        """
        check_version(version)
        check_part(part)
        tokens = tuple(sorted({find_model(m).token for m in models}))
        if not source.is_file():
            raise InputError(f"{source} is not a file", "Give the path of a .ld image.")
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, temp_name = tempfile.mkstemp(dir=self.blob_dir, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target = self.blob(digest.hexdigest())
            is_new = not target.exists()
            if is_new:
                # mkstemp made it 0600; site files are 0640 (provisioning/file_modes.py).
                os.chmod(temp_name, 0o640)
                os.replace(temp_name, target)
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
        record = ImageRecord(
            version,
            part,
            tokens,
            digest.hexdigest(),
            target.stat().st_size,
            source.name,
            time.time(),
        )
        self.rows.put_image(record)
        return record, is_new

    def assign(self, version: str, *, models: Sequence[str] = (), group: str = "") -> list[str]:
        """Assign ``version`` to a group, or to models (all models it has images for).

        Returns the targets assigned. Raises InputError when the version is not in
        the catalog or no model can be worked out.
        """
        images = self.rows.images(version)
        if not images:
            raise InputError(
                f"version {version} is not in the firmware catalog",
                f"Add it first: phoneprov firmware add FILE --version {version} --models ...",
            )
        if group:
            self.rows.assign("group", group, version)
            return [f"group {group}"]
        tokens = sorted(
            {find_model(m).token for m in models} or {m for image in images for m in image.models}
        )
        if not tokens:
            raise InputError(
                f"the images of {version} name no models",
                "Say which models run it: --models VVX410,VVX500.",
            )
        for token in tokens:
            self.rows.assign("model", token, version)
        return [f"model {t}" for t in tokens]

    def _usable(self, version: str, model: str) -> list[ImageRecord]:
        return [
            i for i in self.rows.images(version) if not model or not i.models or model in i.models
        ]

    def pin(self, mac: MacAddress | None, model: str, group: str) -> RolloutPin | None:
        """What a rollout offers this phone (``version`` "" for nothing); None: no rollout."""
        if mac is None or self.pins is None:
            return None
        return self.pins.rollout_pins([(mac.value, model, group)]).get(mac.value)

    def version_for(self, model: str, group: str, mac: MacAddress | None = None) -> str | None:
        """The version a phone of ``model`` in ``group`` should run (None: none assigned).

        With ``mac``, a rollout's word for that phone comes first.
        """
        pinned = self.pin(mac, model, group)
        if pinned is not None:
            return pinned.version or None
        assigned = {(a.scope, a.target): a.version for a in self.rows.assignments()}
        group_version = assigned.get(("group", group)) if group else None
        if group_version is not None and self._usable(group_version, model):
            return group_version
        return assigned.get(("model", model)) if model else None

    def app_file_paths(
        self, group: str = "", *, mac: MacAddress | None = None, model: str = ""
    ) -> dict[str, str]:
        """Per-model ``APP_FILE_PATH`` values for the master file (model token -> path).

        The requesting phone's own model (``mac``, ``model``) gets what a rollout
        offers it, when one does.
        """
        paths: dict[str, str] = {}
        pinned = self.pin(mac, model, group) if model else None
        models = {a.target for a in self.rows.assignments() if a.scope == "model"}
        if pinned is not None:
            models.add(model)
        for token in sorted(models):
            if pinned is not None and token == model:
                version = pinned.version or None
            else:
                version = self.version_for(token, group)
            if version is not None:
                paths[token] = f"{VERSION_DIR}/{version}/sip.ld"
        return paths

    def resolve(
        self, path: str, model: str, group: str, mac: MacAddress | None = None
    ) -> FirmwareFile | None:
        """What to send for a firmware path asked by a phone of ``model`` in ``group``.

        ``path`` is ``sip.ld``, ``<part>.sip.ld``, ``sip.ver`` or the same under
        ``firmware/<version>/``; the plain names answer what a rollout offers
        ``mac``, when one does. Returns None when the catalog has no answer.
        """
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == VERSION_DIR and _VERSION_RE.fullmatch(parts[1]):
            version: str | None = parts[1]
            name = parts[2]
        elif len(parts) == 1:
            version, name = None, parts[0]
        else:
            return None
        lowered = name.lower()
        part = lowered[: -len(".sip.ld")] if lowered.endswith(".sip.ld") else ""
        if part and not _PART_RE.fullmatch(part):
            return None
        pinned = self.pin(mac, model, group) if version is None else None
        if pinned is not None:
            version = pinned.version or None
        elif version is None:
            version = self.version_for(model, group)
            if version is None and part:
                version = self._version_by_part(part, group)
        if version is None or not self.rows.images(version):
            return None
        if lowered == "sip.ver":
            return FirmwareFile(version, body=f"{version}\n".encode())
        if part:
            image = next((i for i in self.rows.images(version) if i.part == part), None)
        elif lowered == "sip.ld":
            usable = self._usable(version, model)
            image = next((i for i in usable if not i.part), usable[0] if usable else None)
        else:
            return None
        if image is None or not self.blob(image.sha256).is_file():
            return None
        return FirmwareFile(version, image, path=self.blob(image.sha256))

    def _version_by_part(self, part: str, group: str) -> str | None:
        """No model in the request: the part number says which models it is for."""
        models = {m for i in self.rows.images() if i.part == part for m in i.models}
        for model in sorted(models):
            version = self.version_for(model, group)
            if version is not None:
                return version
        return None

    def note_download(self, mac: MacAddress, image: ImageRecord, now: float | None = None) -> int:
        """Count a phone's fetch of ``image``, flag a loop; returns the running count.

        A phone fetches an image once and then runs it: the Updater compares
        versions and does not fetch it again. Fetching the same image
        ``LOOP_THRESHOLD`` times within ``LOOP_WINDOW`` means something else keeps
        replacing it. The count, and the flag, start again once the phone has
        gone ``LOOP_WINDOW`` without fetching it.
        """
        count = self.rows.count_download(
            mac, image.sha256, image.version, time.time() if now is None else now, LOOP_WINDOW
        )
        # Set at the threshold; cleared only when a new window starts (the phone went
        # LOOP_WINDOW without fetching), so a fetch below the threshold never clears a
        # loop flag the Lync device update service set for the same phone.
        if count >= LOOP_THRESHOLD:
            self.inventory.set_flag(mac, LOOP_FLAG, on=True)
        elif count == 1:
            self.inventory.set_flag(mac, LOOP_FLAG, on=False)
        return count


@contextmanager
def _site_catalog(settings: Settings) -> Iterator[FirmwareCatalog]:
    """The site's catalog over a store that is closed when the block ends."""
    with closing(open_store(settings)) as store:
        yield FirmwareCatalog(settings.site_dir / "firmware", store.firmware, store.inventory)


@trail.audited("firmware.add", target="version")
def add_firmware(
    settings: Settings, source: Path, version: str, *, models: Sequence[str] = (), part: str = ""
) -> AddedImage:
    """Store the image ``source`` for (version, part) in the site's catalog.

    Raises InputError for a missing file or a bad version, part or model.
    """
    with _site_catalog(settings) as catalog:
        image, new = catalog.add(source, version, models=models, part=part)
    return AddedImage(image, new)


@trail.audited("firmware.assign", target="version")
def assign_firmware(
    settings: Settings, version: str, *, models: Sequence[str] = (), group: str = ""
) -> list[str]:
    """Assign ``version`` to ``group``, or to models; returns the targets (``model VVX410``).

    Raises InputError for a bad group name, a version not in the catalog, or no model.
    """
    check_name(group, "group")
    with _site_catalog(settings) as catalog:
        return catalog.assign(version, models=models, group=group)


def list_firmware(settings: Settings) -> FirmwareListing:
    """Every image in the site's catalog and every assignment."""
    with _site_catalog(settings) as catalog:
        return FirmwareListing(tuple(catalog.rows.images()), tuple(catalog.rows.assignments()))
