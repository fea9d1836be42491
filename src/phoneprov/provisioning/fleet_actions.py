"""Resync and restart phones through their REST API: rate-limited fan-out, one result each.

A phone is reached only at the address it last proved who it is from (its
certificate or device account: ``Store.fleet_actions``), on its web server's
port (``phoneprov device rest-port``, else ``[fleet] rest_port``), over HTTPS,
and only when the certificate it presents there chains to the site's trust
anchors (the Polycom chain and the site's CAs; no host name check: phones have
none) and carries its MAC; otherwise nothing is sent. At most ``[fleet]
max_in_flight`` phones are asked at once and ``per_second`` new requests start
each second; a phone answering 4001 (busy) is asked again after
``busy_retry_delay``. Each result is an event on the phone's timeline; an
accepted request is confirmed when the phone next proves who it is (it fetched
its files): the store does that as it records the phone's request
(``FleetActionStore.note_addresses``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import ssl
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass

import h11
from cryptography import x509

from phoneprov.config import FleetSettings, Settings
from phoneprov.errors import InputError
from phoneprov.model import DeviceStatus, MacAddress
from phoneprov.pki.inspect import classify_device_cert
from phoneprov.pki.trust import load_trust_anchors
from phoneprov.protocols import checksync, phonerest
from phoneprov.protocols.checksync import Pbx
from phoneprov.protocols.phonerest import Action
from phoneprov.provisioning import trail
from phoneprov.records import ActionRecord, Event
from phoneprov.store import Store, open_store

CHECK_SYNC = (
    "reach it through its PBX instead: a SIP NOTIFY with Event: check-sync "
    "(`phoneprov device check-sync MAC --pbx asterisk` prints the command; "
    "docs/fleet-actions.md, 'Phones the server cannot reach')"
)


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # Status 2000
    REFUSED = "refused"  # the phone answered another Status
    BUSY = "busy"  # still 4001 after every retry
    UNREACHABLE = "unreachable"
    CERT_MISMATCH = "cert-mismatch"  # untrusted certificate, or another phone's
    BEHIND_NAT = "behind-nat"  # its address is shared by several phones
    NO_ADDRESS = "no-address"  # never proved who it is: no address to use
    NO_PASSWORD = "no-password"  # no admin password was rendered for it


@dataclass(frozen=True, slots=True)
class Target:
    mac: MacAddress
    address: str
    password: str
    port: int = phonerest.DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class Result:
    mac: MacAddress
    action: Action
    outcome: Outcome
    detail: str
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


@dataclass(frozen=True, slots=True)
class Trust:
    """What a phone's web server certificate must chain to, and whether expiry is forgiven."""

    anchors: tuple[x509.Certificate, ...]
    tolerate_expired: bool

    def check(self, der: bytes | None, mac: MacAddress) -> str:
        """Why the certificate may not speak for ``mac`` ("" when it may).

        The chain is checked here, not by OpenSSL: phones' device certificates are
        client certificates (OpenSSL would refuse them as a server's for their
        purpose), and carry a MAC instead of a host name.
        """
        if der is None:
            return "presented no certificate"
        try:
            leaf = x509.load_der_x509_certificate(der)
        except ValueError:
            return "presented a certificate that cannot be read"
        verdict = classify_device_cert(
            leaf, [], our_roots=list(self.anchors), now=dt.datetime.now(dt.UTC)
        )
        trusted = verdict.origin in ("factory", "custom") and (
            verdict.verdict != "invalid" or (verdict.expired and self.tolerate_expired)
        )
        if not trusted:
            return f"presented a certificate the site does not trust ({verdict.reason})"
        if verdict.mac != mac:
            return f"presented the certificate of {verdict.mac or 'no MAC'}, not of {mac}"
        return ""


def client_context() -> ssl.SSLContext:
    """TLS client for phones' web servers; ``Trust.check`` judges the certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # phones have no host name: the MAC in the certificate counts
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def site_trust(settings: Settings) -> Trust:
    """The site's trust anchors (Polycom chain and site CAs); InputError when there are none."""
    anchors = load_trust_anchors(settings.trust_dir)
    if not anchors:
        raise InputError(
            f"no trust anchors in {settings.trust_dir}",
            "Run `phoneprov trust add FILE.pem`, or `phoneprov init` for a new site.",
        )
    return Trust(tuple(anchors), settings.https.tolerate_expired_device_certs)


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: list[h11.Event]
) -> tuple[int, bytes]:
    conn = h11.Connection(h11.CLIENT)
    for part in request:
        writer.write(conn.send(part) or b"")
    await writer.drain()
    status, body = 0, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > phonerest.MAX_REPLY:
                break
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    return status, body


async def ask(
    target: Target, action: Action, ctx: ssl.SSLContext, trust: Trust, fleet: FleetSettings
) -> Result:
    """Send ``action`` to one phone; never raises for what the network or phone does."""
    port = target.port
    where = f"{target.address}:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.address, port, ssl=ctx), fleet.timeout
        )
    except (OSError, TimeoutError, ssl.SSLError) as error:
        text = "timed out" if isinstance(error, TimeoutError) else error.__class__.__name__
        return Result(
            target.mac, action, Outcome.UNREACHABLE, f"{where} unreachable ({text}); {CHECK_SYNC}"
        )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        problem = trust.check(der, target.mac)
        if problem:
            return Result(
                target.mac, action, Outcome.CERT_MISMATCH, f"{where} {problem}; nothing was sent"
            )
        headers = [
            ("Host", target.address),
            ("Authorization", phonerest.basic_authorization(target.password)),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(phonerest.REQUEST_BODY))),
            ("Connection", "close"),
        ]
        status, body = await asyncio.wait_for(
            _exchange(
                reader,
                writer,
                [
                    h11.Request(method="POST", target=action.path, headers=headers),
                    h11.Data(data=phonerest.REQUEST_BODY),
                    h11.EndOfMessage(),
                ],
            ),
            fleet.timeout,
        )
    except (OSError, TimeoutError, ssl.SSLError, h11.ProtocolError) as error:
        return Result(
            target.mac,
            action,
            Outcome.UNREACHABLE,
            f"{where} stopped answering ({error.__class__.__name__}); {CHECK_SYNC}",
        )
    finally:
        writer.close()
    if status == 401:
        return Result(
            target.mac,
            action,
            Outcome.REFUSED,
            f"{where} answered HTTP 401: the phone's admin password is not the one rendered "
            "for it (it has not fetched its configuration since)",
        )
    try:
        reply = phonerest.parse_reply(body)
    except InputError as error:
        return Result(
            target.mac, action, Outcome.REFUSED, f"{where} answered HTTP {status}: {error}"
        )
    if reply.ok:
        return Result(target.mac, action, Outcome.ACCEPTED, f"phone answered {reply.describe()}")
    outcome = Outcome.BUSY if reply.busy else Outcome.REFUSED
    return Result(target.mac, action, outcome, f"phone answered {reply.describe()}")


class FanOut:
    """Asks many phones, at most ``max_in_flight`` at once, ``per_second`` starts a second."""

    def __init__(self, fleet: FleetSettings, trust: Trust) -> None:
        self.fleet = fleet
        self.trust = trust
        self.ctx = client_context()
        self._slots = asyncio.Semaphore(fleet.max_in_flight)
        self._pace = asyncio.Lock()
        self._next_start = 0.0

    async def _start_slot(self) -> None:
        async with self._pace:
            now = time.monotonic()
            wait = self._next_start - now
            self._next_start = max(now, self._next_start) + 1.0 / self.fleet.per_second
        if wait > 0:
            await asyncio.sleep(wait)

    async def one(self, target: Target, action: Action) -> Result:
        attempts = 0
        while True:
            attempts += 1
            await self._start_slot()
            async with self._slots:
                result = await ask(target, action, self.ctx, self.trust, self.fleet)
            if result.outcome is not Outcome.BUSY or attempts > self.fleet.busy_retries:
                return Result(result.mac, action, result.outcome, result.detail, attempts)
            await asyncio.sleep(self.fleet.busy_retry_delay)

    async def run(self, targets: Sequence[Target], action: Action) -> list[Result]:
        return list(await asyncio.gather(*(self.one(t, action) for t in targets)))


def select_phones(
    store: Store, macs: Sequence[MacAddress] = (), *, group: str = "", everyone: bool = False
) -> list[MacAddress]:
    """The phones named, the phones of ``group``, or every known or discovered phone.

    Raises InputError when nothing is named or nothing matches.
    """
    if macs:
        return list(dict.fromkeys(macs))
    if group:
        found = [e.mac for e in store.inventory.entries(group=group)]
        if not found:
            raise InputError(
                f"no phone in group {group!r}",
                "List the groups with `phoneprov device list`; groups come from the inventory.",
            )
        return found
    if everyone:
        return [
            d.mac
            for d in store.list_devices()
            if d.status in (DeviceStatus.KNOWN, DeviceStatus.DISCOVERED)
        ]
    raise InputError(
        "name the phones: one or more MAC addresses, --group GROUP or --all", "See --help."
    )


def plan_targets(
    store: Store, macs: Sequence[MacAddress], action: Action, default_port: int
) -> tuple[list[Target], list[Result]]:
    """Targets that can be asked, and results for the phones that cannot (not asked)."""
    access = store.fleet_actions.access(macs)
    shared: dict[str, int] = {}
    targets: list[Target] = []
    skipped: list[Result] = []
    for mac in macs:
        found = access.get(mac.value)
        if found is None or not found.address:
            skipped.append(
                Result(
                    mac,
                    action,
                    Outcome.NO_ADDRESS,
                    f"{mac} never proved who it is to this server, so it has no address to "
                    f"use; {CHECK_SYNC}",
                    0,
                )
            )
            continue
        if found.address not in shared:
            shared[found.address] = store.fleet_actions.sharing(found.address)
        if shared[found.address] > 1:
            skipped.append(
                Result(
                    mac,
                    action,
                    Outcome.BEHIND_NAT,
                    f"{shared[found.address]} phones reach this server from {found.address}: "
                    f"they are behind NAT and cannot be reached there; {CHECK_SYNC}",
                    0,
                )
            )
            continue
        password = store.fleet_actions.admin_password(mac) if found.has_admin_password else ""
        if not password:
            skipped.append(
                Result(
                    mac,
                    action,
                    Outcome.NO_PASSWORD,
                    f"{mac} has no admin password yet: set [fleet] rest_api = true; the phone "
                    "gets one with its next configuration over mutual TLS",
                    0,
                )
            )
            continue
        targets.append(Target(mac, found.address, password, found.rest_port or default_port))
    return targets, skipped


def record_results(store: Store, results: Sequence[Result], now: float) -> None:
    """One event on each phone's timeline and one action row per result."""
    events = [
        Event(now, r.mac.value, f"fleet-{r.action.value}", f"{r.outcome.value}: {r.detail}")
        for r in results
    ]
    store.record([], events)
    store.fleet_actions.add_actions(
        [
            ActionRecord(0, now, r.mac.value, r.action.value, r.outcome.value, r.detail)
            for r in results
        ]
    )


def act(
    store: Store, settings: Settings, trust: Trust, action: Action, macs: Sequence[MacAddress]
) -> list[Result]:
    """Ask ``macs`` to resync or restart; record and return one result per phone, in order."""
    targets, skipped = plan_targets(store, macs, action, settings.fleet.rest_port)
    now = time.time()
    sent = asyncio.run(FanOut(settings.fleet, trust).run(targets, action)) if targets else []
    by_mac = {r.mac.value: r for r in [*skipped, *sent]}
    ordered = [by_mac[mac.value] for mac in macs]
    record_results(store, ordered, now)
    return ordered


@trail.audited("device.fleet-action", target="action")
def send_action(
    settings: Settings,
    action: Action,
    macs: Sequence[MacAddress] = (),
    *,
    group: str = "",
    everyone: bool = False,
) -> list[Result]:
    """Resync or restart the phones named; returns one result per phone, in order.

    Raises InputError when no phone is named or matches, or the site has no trust anchors.
    """
    trust = site_trust(settings)
    with closing(open_store(settings)) as store:
        chosen = select_phones(store, macs, group=group, everyone=everyone)
        return act(store, settings, trust, action, chosen)


@trail.audited("device.rest-port", target="mac")
def set_rest_port(settings: Settings, mac: MacAddress, port: int | None) -> None:
    """Reach ``mac``'s web server on ``port`` (None: ``[fleet] rest_port`` again).

    Raises InputError for a port out of range or a phone not in the inventory.
    """
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"port {port} is out of range", "Use a port from 1 to 65535.")
    with closing(open_store(settings)) as store:
        if store.inventory.entry(mac) is None:
            raise InputError(
                f"{mac} is not in the inventory",
                "Add it first with `phoneprov device add` or `phoneprov device import`.",
            )
        store.fleet_actions.set_rest_port(mac, port)


@dataclass(frozen=True, slots=True)
class CheckSync:
    """The PBX command that makes one phone resync ("" and why not when there is none)."""

    mac: MacAddress
    command: str
    note: str = ""


def check_sync_commands(
    settings: Settings,
    pbx: Pbx,
    macs: Sequence[MacAddress] = (),
    *,
    group: str = "",
    everyone: bool = False,
    profile: str = "internal",
) -> list[CheckSync]:
    """For phones phoneprov cannot reach: the command to run on their PBX, per phone,
    naming the endpoint by the user (else extension) of the phone's first line.

    Raises InputError when no phone is named or matches.
    """
    with closing(open_store(settings)) as store:
        chosen = select_phones(store, macs, group=group, everyone=everyone)
        entries = store.inventory.entries_by_mac(chosen)
    found: list[CheckSync] = []
    for mac in chosen:
        entry = entries.get(mac.value)
        if entry is None or not entry.lines:
            found.append(
                CheckSync(mac, "", "no SIP line in the inventory: its endpoint is unknown")
            )
            continue
        line = entry.lines[0]
        user = line.user or line.ext
        domain = line.server.rsplit(":", 1)[0] if line.server.count(":") == 1 else line.server
        command = checksync.command(pbx, user, domain or settings.primary_fqdn, profile)
        if command is None:
            found.append(
                CheckSync(
                    mac, "", "its line's user or server is not a plain name: name it yourself"
                )
            )
        else:
            found.append(CheckSync(mac, command))
    return found
