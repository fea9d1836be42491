"""Template layers written by an import: the text, and where each one goes.

Each layer builds on the one below (``{% extends "base" %}``) and adds the
imported parameters to the ``params`` block, one element per parameter
(phones ignore element names). The parameters come from files a phone read,
so their values are data, never template code: they are escaped for XML, and
``{`` and ``}`` are written as character references, which the phone reads
back as the same characters and jinja2 never sees as its own syntax.

An import may run again (after fixing a file it could not read); it replaces
the layers it wrote before, which carry ``MARKER``, and refuses to replace one
an administrator wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from phoneprov.errors import InputError
from phoneprov.provisioning.migrate.phones import Unit
from phoneprov.provisioning.render import DEVICE_TEMPLATE, TEMPLATES

MARKER = "{# Written by `phoneprov import bootdir`"
SITE_TEMPLATE = TEMPLATES["site.cfg"]
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "{": "&#123;", "}": "&#125;"}
_ESCAPES |= {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def site_layer() -> str:
    return SITE_TEMPLATE


def group_layer(group: str) -> str:
    return f"groups/{group}/{SITE_TEMPLATE}"


def device_layer(mac: str) -> str:
    return f"devices/{mac}/{DEVICE_TEMPLATE}"


def _escape(value: str) -> str:
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def _comment(text: str) -> str:
    return text.replace("#}", "# }")


def layer_text(units: Sequence[Unit], sources: Sequence[str]) -> str:
    """A template adding ``units`` to the layer below; ``sources`` name the old files."""
    lines = [
        '{% extends "base" %}',
        f"{MARKER} from {_comment(', '.join(sources))}.",
        "   Edit it as any template (docs/configuration.md); importing again replaces it. #}",
        "{% block params %}{{ super() }}",
    ]
    written: set[str] = set()  # device.set comes with every device.* setting: write it once
    for name, value in (pair for unit in units for pair in unit):
        if name not in written:
            written.add(name)
            lines.append(f'  <{name.split(".", 1)[0]} {name}="{_escape(value)}"/>')
    lines.append("{%- endblock %}")
    return "\n".join(lines) + "\n"


def split_site_and_groups(
    groups: Mapping[str, list[Unit]], *, site_wide: bool
) -> tuple[list[Unit], dict[str, list[Unit]]]:
    """Parameters every group has with the same value (the site layer), and the rest.

    ``site_wide`` False (the site serves phones this import does not know) keeps
    everything in the group layers, so other phones' files do not change.
    """
    if not site_wide or not groups:
        return [], {name: list(units) for name, units in groups.items()}
    first, *others = groups.values()
    common = [unit for unit in first if all(unit in units for units in others)]
    rest = {name: [unit for unit in units if unit not in common] for name, units in groups.items()}
    return common, rest


def check_replaceable(templates_dir: Path, paths: Sequence[str]) -> None:
    """Raise InputError when a template the import would write exists and is not its own."""
    for relative in paths:
        path = templates_dir / relative
        if path.is_file() and MARKER not in path.read_text(encoding="utf-8", errors="replace"):
            raise InputError(
                f"{path} exists and was not written by an import; importing would replace it",
                "Move it aside and import again (then merge it back), or import into a "
                "fresh site (`phoneprov init`).",
            )
