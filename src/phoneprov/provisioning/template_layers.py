"""Layered jinja2 templates: built-in -> site -> group -> device.

For each file phoneprov renders, the template is looked up, most specific
first, in::

    <site>/templates/devices/<mac>/<name>.j2
    <site>/templates/groups/<group>/<name>.j2
    <site>/templates/<name>.j2
    the built-in template

The first one found is rendered. ``{% extends "base" %}`` in any of them means
"the same file from the layer below", so a layer can add to a block
(``{{ super() }}``) instead of copying the whole file. Output is checked:
well-formed XML, and every ``device.*`` parameter with its ``.set`` twin and
``device.set="1"`` (research §1.4: the phone ignores them otherwise).
"""

from __future__ import annotations

import os
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from phoneprov.errors import PhoneprovError
from phoneprov.protocols import safexml

BASE = "base"
BUILTIN_DIR = Path(str(resources.files("phoneprov") / "templates"))


class RenderError(PhoneprovError):
    """A template failed or rendered something a phone cannot use (HTTP 500 to the phone)."""

    def __init__(self, message: str, *, template: str, line: int | None) -> None:
        where = f"{template}, line {line}" if line else template
        super().__init__(
            f"{where}: {message}",
            "Fix the template (see docs/configuration.md), then check with "
            "`phoneprov render MAC FILE`.",
        )
        self.template = template
        self.line = line


@dataclass(frozen=True, slots=True)
class Layer:
    """One place a template may come from; ``name`` is the jinja2 template name."""

    name: str
    path: Path
    shown: str  # how messages name the file


def layer_chain(site_templates: Path, file: str, mac: str, group: str) -> list[Layer]:
    """The layers that exist for ``file`` for this device, most specific first."""
    candidates = []
    if mac:
        candidates.append(
            Layer(
                f"device:{group}:{mac}/{file}",
                site_templates / "devices" / mac / file,
                f"templates/devices/{mac}/{file}",
            )
        )
    if group:
        candidates.append(
            Layer(
                f"group:{group}/{file}",
                site_templates / "groups" / group / file,
                f"templates/groups/{group}/{file}",
            )
        )
    candidates.append(Layer(f"site/{file}", site_templates / file, f"templates/{file}"))
    candidates.append(Layer(f"builtin/{file}", BUILTIN_DIR / file, f"built-in {file}"))
    return [layer for layer in candidates if layer.path.is_file()]


class LayeredEnvironment(jinja2.Environment):
    """An environment whose ``"base"`` means the next layer below the template naming it."""

    def __init__(self, site_templates: Path) -> None:
        self.site_templates = site_templates
        super().__init__(
            loader=jinja2.FunctionLoader(self._source),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            auto_reload=True,
        )
        self.globals["params"] = params

    def _split(self, name: str) -> tuple[str, str, str]:
        """(file, mac, group) a layer name was built from."""
        head, _, file = name.partition("/")
        if head.startswith("device:"):
            _, group, mac = head.split(":", 2)
            return file, mac, group
        if head.startswith("group:"):
            return file, "", head.split(":", 1)[1]
        return file, "", ""

    def _path(self, name: str) -> Path | None:
        file, mac, group = self._split(name)
        for layer in layer_chain(self.site_templates, file, mac, group):
            if layer.name == name:
                return layer.path
        return None

    def _source(self, name: str) -> tuple[str, str, Callable[[], bool]] | None:
        path = self._path(name)
        if path is None:
            return None
        mtime = os.stat(path).st_mtime_ns
        return (
            path.read_text(encoding="utf-8"),
            str(path),
            (lambda: path.is_file() and os.stat(path).st_mtime_ns == mtime),
        )

    def join_path(self, template: str, parent: str) -> str:
        if template != BASE:
            return template
        file, mac, group = self._split(parent)
        chain = [layer.name for layer in layer_chain(self.site_templates, file, mac, group)]
        below = chain[chain.index(parent) + 1 :] if parent in chain else []
        if not below:
            raise jinja2.TemplateNotFound(f"{BASE} (no layer below {parent})")
        return below[0]


def params(mapping: Mapping[str, object]) -> Markup:
    """Polycom parameters as XML attributes; ``device.*`` ones get ``.set="1"`` twins.

    None values are left out, so a template can pass optional parameters as is.
    """
    parts: list[str] = []
    device = False
    for name, value in mapping.items():
        if value is None:
            continue
        parts.append(f'{escape(name)}="{escape(str(value))}"')
        if name.startswith("device.") and not name.endswith(".set") and name != "device.set":
            device = True
            parts.append(f'{escape(name)}.set="1"')
    if device and "device.set" not in mapping:
        parts.insert(0, 'device.set="1"')
    return Markup(" ".join(parts))


def _template_line(error: BaseException, shown: Mapping[str, str]) -> tuple[str, int | None]:
    """The template file and line a runtime error came from (jinja2 rewrites tracebacks)."""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename in shown:
            return shown[frame.filename], frame.lineno
    return "", None


def render_layered(
    env: LayeredEnvironment, file: str, mac: str, group: str, context: Mapping[str, object]
) -> tuple[bytes, Layer]:
    """Render ``file`` for a device from its most specific layer; check the result.

    Returns the bytes and the layer used. Raises RenderError naming the template
    file and line for template errors, malformed XML and ``.set`` rule breaks.
    """
    chain = layer_chain(env.site_templates, file, mac, group)
    if not chain:
        raise RenderError("no template", template=file, line=None)
    top = chain[0]
    shown = {
        str(layer.path): layer.shown for layer in layer_chain(env.site_templates, file, mac, group)
    }
    try:
        text = env.get_template(top.name).render(context)
    except jinja2.TemplateSyntaxError as error:
        raise RenderError(
            error.message or "syntax error",
            template=shown.get(error.filename or "", top.shown),
            line=error.lineno,
        ) from None
    except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as error:
        where, line = _template_line(error, shown)
        raise RenderError(
            f"{error.__class__.__name__}: {error}", template=where or top.shown, line=line
        ) from None
    body = text.encode("utf-8")
    check_xml(body, top.shown)
    return body, top


def check_xml(body: bytes, template: str) -> ET.Element:
    """Parse ``body``; check the ``.set`` rules. Returns the root; raises RenderError."""
    try:
        root = safexml.parse(body)
    except ET.ParseError as error:
        line, _column = error.position
        raise RenderError(
            f"the rendered file is not well-formed XML: {error} (of the output)",
            template=template,
            line=line,
        ) from None
    attributes: dict[str, str] = {}
    for element in root.iter():
        attributes.update(element.attrib)
    device = [
        n
        for n in attributes
        if n.startswith("device.") and not n.endswith(".set") and n != "device.set"
    ]
    # A parameter of a settable group (device.sec.TLS.customDeviceCert1.publicCert)
    # is covered by the group's twin (device.sec.TLS.customDeviceCert1.set).
    missing = [
        n
        for n in device
        if f"{n}.set" not in attributes and f"{n.rsplit('.', 1)[0]}.set" not in attributes
    ]
    if missing:
        raise RenderError(
            f"{', '.join(sorted(missing)[:5])} without its .set twin: the phone "
            "ignores such device.* parameters",
            template=template,
            line=None,
        )
    if device and attributes.get("device.set") != "1":
        raise RenderError(
            'device.* parameters without device.set="1": the phone ignores them',
            template=template,
            line=None,
        )
    return root
