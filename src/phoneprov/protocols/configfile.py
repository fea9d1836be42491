"""Polycom configuration files as written: every attribute, in order, with its line.

A phone reads attribute names only (element names are ignored, and one
parameter may sit in any element, nested as deep as the file likes) and keeps
the first value of each parameter (research/polycom_protocol.md §1.2/§1.4).
Migrating an old boot directory needs more than the values: a report that
points at the file and line each one came from. ElementTree keeps no
positions, so after ``safexml.parse`` has accepted the document (no DTD, no
entities, well-formed) a second pass with expat notes where each start tag
begins, and the tag's own text says on which line each attribute stands
(Polycom files often put one attribute per line).

Pure: bytes in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.parsers import expat

from phoneprov.protocols import safexml

ParseError = safexml.ParseError

# One attribute of a start tag: name = "value" or 'value' (XML 1.0 §3.1, production [41]).
_ATTRIBUTE = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')""")
_TAG_NAME = re.compile(rb"<[^\s/>]+")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One ``name="value"`` of a configuration file."""

    name: str
    value: str
    line: int  # 1-based line of the attribute's name
    element: str  # the element it sits on (phones ignore it; the master file does not)


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    """A parsed file: its root element and every attribute in document order."""

    root: str
    attributes: tuple[Attribute, ...]


def read(data: bytes) -> ConfigDocument:
    """Return the root element's name and every attribute of ``data`` with its line.

    Raises ``ParseError`` (``safexml.ForbiddenXml`` for a DTD or entity) whose
    ``position`` is (line, column) when the document is not well-formed.
    """
    root = safexml.parse(data)
    found: list[Attribute] = []
    parser = expat.ParserCreate()
    parser.ordered_attributes = True

    def start(tag: str, attributes: list[str]) -> None:
        line, offset = parser.CurrentLineNumber, parser.CurrentByteIndex
        pairs = list(zip(attributes[::2], attributes[1::2], strict=True))
        lines = _attribute_lines(data, offset, line)
        # Should the tokenizer lose its way in a tag, its attributes get the tag's line.
        lines += [line] * (len(pairs) - len(lines))
        found.extend(
            Attribute(name, value, at, tag) for (name, value), at in zip(pairs, lines, strict=False)
        )

    parser.StartElementHandler = start
    parser.Parse(data, True)
    return ConfigDocument(root.tag, tuple(found))


def _attribute_lines(data: bytes, offset: int, line: int) -> list[int]:
    """Lines of the attributes of the start tag at ``offset`` (on ``line``), in order."""
    name = _TAG_NAME.match(data, offset)
    if name is None:
        return []
    lines = []
    position = name.end()
    while (match := _ATTRIBUTE.match(data, position)) is not None:
        lines.append(line + data.count(b"\n", offset, match.start(1)))
        position = match.end()
    return lines
