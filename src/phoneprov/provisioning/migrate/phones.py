"""From the files a phone read to what phoneprov keeps for it: lines, label, parameters.

A phone reads its ``CONFIG_FILES`` left to right and keeps the first value of
each parameter (SIP2 A-2), so what it ran with is the first occurrence of each
name across those files; later ones it never used. phoneprov serves
``<mac>-phone-secrets.cfg`` (per phone), then ``site.cfg`` (templates of the
group and the site), then ``initial.cfg``. The phone's own values therefore go
to its device layer and always win, which is what they did before only when
they were not overridden by an earlier shared file: those overridden values
are left out, so the shared value still wins.

``reg.N.*`` becomes inventory lines (the password sealed by the store);
``reg.1.label`` the device label. What is left becomes template parameters,
except secrets (phoneprov keeps none in templates, which are files), the
settings phoneprov makes itself (the provisioning server, its root CA,
polling), and ``device.*`` settings the phone ignored for want of their
``.set`` twins and ``device.set="1"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from phoneprov.errors import InputError
from phoneprov.protocols.configfile import ConfigDocument
from phoneprov.provisioning.inventory import check_label, make_line
from phoneprov.provisioning.migrate.ledger import Ledger, Source, Use
from phoneprov.records import Line

# Parameter names that hold secrets (SIP, LDAP, admin and user passwords, keys, PINs).
SECRET = re.compile(r"password|passwd|passphrase|pwd|secret|privatekey|devicekey$|\.pin$", re.I)
_REG = re.compile(r"reg\.(\d+)\.address")
LINE_FIELDS = {"ext": "address", "user": "auth.userId", "password": "auth.password"}
SERVER_FIELD = "server.1.address"
# A parameter for a template layer, with the companions it needs in the same file.
Unit = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Chosen:
    """A unit for a template layer and the occurrences it was made of."""

    unit: Unit
    sources: tuple[Source, ...]


def effective(
    files: Sequence[tuple[str, ConfigDocument, bool]], ledger: Ledger
) -> dict[str, Source]:
    """The value of each parameter a phone reading ``files`` (name, document, shared) ran with.

    Occurrences it never used are noted in the ledger, naming the one it used.
    """
    found: dict[str, Source] = {}
    for file, document, shared in files:
        for attribute in document.attributes:
            source = Source(attribute.name, attribute.value, file, attribute.line, shared)
            first = found.setdefault(attribute.name, source)
            if first is not source:
                ledger.skip(
                    source,
                    f"never used: {first.file} line {first.line} sets it first "
                    "(phones keep the first value)",
                )
    return found


@dataclass(frozen=True, slots=True)
class PhoneLines:
    """A phone's SIP lines and label, and what they mean for its template parameters."""

    lines: tuple[Line, ...]
    label: str
    consumed: frozenset[str]  # names the lines and label stand for: not template parameters
    # Labels of lines after the first that are not their extension: the device layer
    # carries them even when a shared file set them, since phoneprov's per-phone file,
    # read first, labels such lines with their extension.
    pinned: frozenset[str]


def lines_of(mac: str, params: Mapping[str, Source], model: str, ledger: Ledger) -> PhoneLines:
    """The phone's SIP lines and label from the parameters it ran with.

    A line phoneprov cannot store (an address its inventory refuses, a line
    number past the model's) is a problem in the ledger; its other ``reg.N``
    values are left out with it, so no half line is served.
    """
    lines: list[Line] = []
    label = ""
    consumed: set[str] = set()
    pinned: set[str] = set()
    for name, source in params.items():
        match = _REG.fullmatch(name)
        if match is None or not source.value.strip():
            continue
        index = int(match.group(1))
        prefix = f"reg.{index}."
        names = {field: prefix + suffix for field, suffix in LINE_FIELDS.items()}
        names["server"] = prefix + SERVER_FIELD
        fields = {field: params[n].value for field, n in names.items() if n in params}
        consumed.update(n for n in names.values() if n in params)
        try:
            line = make_line(index, fields, model)
        except InputError as error:
            ledger.problem(source, f"{mac} line {index}: {error}. {error.hint}")
            for other in names.values():
                if other in params and other != name:
                    ledger.skip(params[other], f"line {index} of {mac} is not imported")
            continue
        lines.append(line)
        for n in names.values():
            if n in params:
                ledger.use(params[n], Use("line", mac, index))
        label_source = params.get(prefix + "label")
        if label_source is None:
            continue
        if index == 1:
            consumed.add(label_source.name)
            try:
                label = check_label(label_source.value)
            except InputError as error:
                ledger.problem(label_source, f"{mac}: {error}. {error.hint}")
                continue
            ledger.use(label_source, Use("label", mac))
        elif label_source.value == line.ext:
            consumed.add(label_source.name)
            ledger.use(label_source, Use("line", mac, index))
        else:
            pinned.add(label_source.name)
    return PhoneLines(
        tuple(sorted(lines, key=lambda line: line.index)),
        label,
        frozenset(consumed),
        frozenset(pinned),
    )


def _twin(name: str, context: Mapping[str, Source]) -> str | None:
    """The ``.set`` parameter that lets the phone apply ``device.*`` ``name``, if it is "1".

    A setting of a group (``device.sec.TLS.customDeviceCert1.publicCert``) is
    enabled by the group's twin as well (research/polycom_protocol.md §1.4).
    """
    for candidate in (f"{name}.set", f"{name.rsplit('.', 1)[0]}.set"):
        found = context.get(candidate)
        if found is not None and found.value.strip() == "1":
            return candidate
    return None


def template_params(
    params: Mapping[str, Source],
    context: Mapping[str, Source],
    owned: frozenset[str],
    ledger: Ledger,
) -> list[Chosen]:
    """The parameters of ``params`` a template layer should carry, with their sources.

    ``context`` is everything the phone (or group) read, for ``device.set`` and
    the ``.set`` twins; each ``device.*`` parameter comes as one unit with its
    twin and ``device.set``, since the rendered file must carry them itself
    (template_layers.check_xml). ``owned`` are names phoneprov's own files set.
    What is left out is noted in the ledger; the caller notes where the rest went.
    """
    chosen: list[Chosen] = []
    for name, source in params.items():
        lowered = name.lower()
        if ":" in name or lowered.startswith("xml"):
            ledger.skip(source, "an XML namespace declaration, not a phone parameter")
        elif lowered.startswith("device.") and lowered.endswith(".set"):
            continue  # written with the parameter it enables
        elif SECRET.search(name):
            ledger.skip(
                source,
                "a secret; phoneprov keeps only SIP line passwords (encrypted in its "
                "database) and writes no secret into a template file. Set it on the "
                "phones another way.",
            )
        elif name in owned or lowered.startswith("device.prov."):
            ledger.skip(
                source,
                "phoneprov sets it itself (initial.cfg and site.cfg: its own server, "
                "root CA and polling)",
            )
        elif lowered.startswith("device."):
            twin = _twin(name, context)
            enabled = context.get("device.set")
            if twin is None or enabled is None or enabled.value.strip() != "1":
                ledger.skip(
                    source,
                    'the phone ignored it: a device.* setting applies only with its .set="1" '
                    'twin and device.set="1"',
                )
                continue
            chosen.append(
                Chosen(
                    (("device.set", "1"), (name, source.value), (twin, "1")),
                    (source, context[twin], enabled),
                )
            )
        else:
            chosen.append(Chosen(((name, source.value),), (source,)))
    return chosen
