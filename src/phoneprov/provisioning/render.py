"""Configs rendered per request from the inventory, so no secret sits in the boot directory.

``SiteRenderer.serve`` answers, for a file the access service has already
allowed, with rendered bytes (master file, ``initial.cfg``, ``site.cfg``, an
inventory phone's ``<mac>-phone-secrets.cfg``) or with a firmware image from
the catalog. Templates come from ``layers``; the variables are documented in
docs/configuration.md and built here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoneprov.config import Settings
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.protocols.phonemodels import MODELS
from phoneprov.protocols.polycom import BOOTSTRAP_FILE, MASTER_FILE, Resource, ResourceKind
from phoneprov.provisioning.enrolment import device_cert_settings
from phoneprov.provisioning.firmware import FirmwareCatalog, FirmwareFile
from phoneprov.provisioning.template_layers import (
    Layer,
    LayeredEnvironment,
    RenderError,
    render_layered,
)
from phoneprov.records import InventoryEntry
from phoneprov.store import Store

SITE_FILE = "site.cfg"
DEVICE_SUFFIX = "-phone-secrets.cfg"
DEVICE_FILE_PATTERN = f"[PHONE_MAC_ADDRESS]{DEVICE_SUFFIX}"
DEVICE_TEMPLATE = "phone-secrets.cfg.j2"
TEMPLATES = {
    MASTER_FILE: "master.cfg.j2",
    BOOTSTRAP_FILE: "initial.cfg.j2",
    SITE_FILE: "site.cfg.j2",
}
MASK = "********"
POLLING = {"enabled": "1", "mode": "rel", "period": "86400", "time": "03:00"}

__all__ = ["RenderError", "Rendered", "SiteRenderer"]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A file produced for one request: rendered bytes, or a firmware image on disk."""

    name: str
    template: str  # the template file used, as messages name it ("" for firmware)
    body: bytes | None = None
    path: Path | None = None
    firmware: FirmwareFile | None = None


@dataclass(frozen=True, slots=True)
class LineVars:
    index: int
    ext: str
    user: str
    password: str
    server: str
    label: str


@dataclass(frozen=True, slots=True)
class DeviceVars:
    mac: str
    model: str = ""
    family: str = ""
    label: str = ""
    group: str = ""
    site: str = ""
    status: str = ""
    firmware: str = ""  # the application version the phone last reported


@dataclass(frozen=True, slots=True)
class SiteVars:
    name: str
    fqdn: str
    http_url: str
    https_url: str


@dataclass
class _Facts:
    """What the renderer knows about the requesting device."""

    mac: MacAddress | None
    entry: InventoryEntry | None = None
    status: DeviceStatus | None = None
    reported_firmware: str = ""
    lines: list[LineVars] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.entry.group if self.entry else ""

    @property
    def in_inventory(self) -> bool:
        return self.entry is not None and self.status is DeviceStatus.KNOWN


class SiteRenderer:
    """Renders one site's files for one device at a time (thread-safe: no shared state)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.env = LayeredEnvironment(settings.site_dir / "templates")
        self.inventory = store.inventory
        self.firmware = FirmwareCatalog(
            settings.site_dir / "firmware", store.firmware, self.inventory, store.fleet_actions
        )

    # what is known
    def facts(self, mac: MacAddress | None, *, masked: bool = False) -> _Facts:
        """Inventory entry, status and lines of ``mac`` (passwords masked if asked)."""
        if mac is None:
            return _Facts(None)
        record = self.store.get_device(mac)
        entry = self.inventory.entry(mac) if record is not None else None
        facts = _Facts(
            mac, entry, record.status if record else None, record.firmware if record else ""
        )
        if entry is not None:
            for line in entry.lines:
                label = entry.label if line.index == 1 and entry.label else line.ext
                facts.lines.append(
                    LineVars(
                        line.index,
                        line.ext,
                        line.user,
                        MASK if masked and line.password else line.password,
                        line.server,
                        label,
                    )
                )
        return facts

    def device_file_name(self, mac: MacAddress) -> str:
        return f"{mac.value}{DEVICE_SUFFIX}"

    def config_files(self, facts: _Facts, *, public: bool) -> list[str]:
        """CONFIG_FILES of the master file, most specific first (first value wins)."""
        if public:
            return [BOOTSTRAP_FILE]
        files = [SITE_FILE, BOOTSTRAP_FILE]
        if facts.mac is None or facts.in_inventory:
            files.insert(0, DEVICE_FILE_PATTERN)
        return files

    # rendering
    def admin_password(self, mac: MacAddress) -> str:
        """The phone's REST admin password, made (random, sealed in the store) on first use."""
        stored = self.store.fleet_actions.admin_password(mac)
        if stored:
            return stored
        return self.store.fleet_actions.keep_admin_password(mac, secrets.token_urlsafe(12))

    def context(self, facts: _Facts, *, public: bool, mutual_tls: bool = False) -> dict[str, Any]:
        entry = facts.entry
        model = entry.model if entry else ""
        known = MODELS.get(model.lower())
        settings = self.settings
        return {
            "mac": facts.mac.value if facts.mac else "",
            "device": DeviceVars(
                mac=facts.mac.value if facts.mac else "",
                model=model,
                family=known.family.value if known else "",
                label=entry.label if entry else "",
                group=facts.group,
                site=entry.site if entry else "",
                status=facts.status.value if facts.status else "",
                firmware=facts.reported_firmware,
            ),
            "lines": facts.lines,
            "site": SiteVars(
                settings.name, settings.primary_fqdn, settings.http_url(), settings.https_url()
            ),
            "ca_pem": self._ca_pem(),
            "polling": POLLING,
            "folders": {kind.value: name for kind, name in settings.policy.folders.items()},
            "public": public,
            "config_files": self.config_files(facts, public=public),
            "misc_files": [],
            "app_file_path": "sip.ld",
            "firmware": self.firmware.app_file_paths(facts.group, mac=facts.mac, model=model),
            "device_cert": (
                device_cert_settings(self.store, settings.pki_dir, facts.mac)
                if facts.mac is not None and not public
                else {}
            ),
            # [fleet] rest_api: the phone's web server and REST API on, and its own admin
            # password, sent only over its mutual-TLS session (never HTTP or FTP).
            "rest_api": settings.fleet.rest_api,
            "admin_password": (
                self.admin_password(facts.mac)
                if settings.fleet.rest_api and mutual_tls and facts.mac is not None
                else ""
            ),
        }

    def _ca_pem(self) -> str:
        path = self.settings.pki_dir / "ca.pem"
        if not path.is_file():
            raise RenderError(
                f"the site's root CA {path} is missing; initial.cfg must carry it",
                template="initial.cfg.j2",
                line=None,
            )
        return path.read_text().strip()

    def render(
        self,
        name: str,
        mac: MacAddress | None,
        *,
        public: bool = False,
        masked: bool = False,
        mutual_tls: bool = False,
    ) -> tuple[bytes, Layer]:
        """Render file ``name`` as device ``mac`` would get it; raise RenderError.

        ``name`` is a file phoneprov renders (see ``template_for``); other names
        raise RenderError too.
        """
        facts = self.facts(mac, masked=masked)
        template = self.template_for(name, facts)
        if template is None:
            raise RenderError(
                f"phoneprov does not render {name} for {mac or 'an unknown device'}",
                template=name,
                line=None,
            )
        return render_layered(
            self.env,
            template,
            facts.mac.value if facts.mac else "",
            facts.group,
            self.context(facts, public=public, mutual_tls=mutual_tls),
        )

    def template_for(self, name: str, facts: _Facts) -> str | None:
        """The template behind a boot-directory file name, for this device; None if none."""
        lowered = name.lower()
        if lowered in TEMPLATES:
            return TEMPLATES[lowered]
        if (
            facts.mac is not None
            and facts.in_inventory
            and lowered == self.device_file_name(facts.mac)
        ):
            return DEVICE_TEMPLATE
        return None

    # serving
    def serve(
        self,
        resource: Resource,
        *,
        mac: MacAddress | None,
        model: str,
        public: bool,
        mutual_tls: bool = False,
    ) -> Rendered | None:
        """The rendered file or firmware image for an allowed read; None if not ours.

        ``mac`` is the requester (certificate, account, User-Agent or recent IP);
        for device files it is the file's owner, which policy has checked.
        ``mutual_tls``: the request came over the phone's own TLS session (secrets
        only for it). Raises RenderError when a template fails.
        """
        kind = resource.kind
        if kind is ResourceKind.FIRMWARE:
            facts = self.facts(mac)
            entry_model = facts.entry.model if facts.entry else ""
            found = self.firmware.resolve(
                resource.path, model or entry_model, facts.group, facts.mac
            )
            if found is None:
                return None
            return Rendered(resource.name, "", body=found.body, path=found.path, firmware=found)
        if resource.folder or kind not in (
            ResourceKind.MASTER,
            ResourceKind.BOOTSTRAP,
            ResourceKind.SHARED,
            ResourceKind.DEVICE_FILE,
        ):
            return None
        owner = resource.owner if kind is ResourceKind.DEVICE_FILE else mac
        facts = self.facts(owner)
        template = self.template_for(resource.name, facts)
        if template is None:
            return None
        body, layer = render_layered(
            self.env,
            template,
            facts.mac.value if facts.mac else "",
            facts.group,
            self.context(facts, public=public, mutual_tls=mutual_tls),
        )
        return Rendered(resource.name, layer.shown, body=body)

    def count_download(self, mac: MacAddress, served: Rendered) -> int:
        """Record a firmware image fetch; returns the phone's running count (0: not an image)."""
        if served.firmware is None or served.firmware.image is None:
            return 0
        return self.firmware.note_download(mac, served.firmware.image, now=time.time())
