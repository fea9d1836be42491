"""Reading Polycom configuration files with the line of every attribute (protocols/configfile)."""

from __future__ import annotations

import pytest

from phoneprov.protocols import configfile, safexml

NESTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment naming reg.1.address="9999" must not shift anything -->
<polycomConfig>
  <reg reg.1.address="1001"
       reg.1.label='Front > desk'
       reg.1.auth.userId = "1001">
    <reg.1.auth reg.1.auth.password="a &quot;b&quot;"/>
  </reg>
  <up up.backlight.idleIntensity="1"/>
</polycomConfig>
"""


def test_ok_every_attribute_with_its_line_in_document_order() -> None:
    document = configfile.read(NESTED)
    assert document.root == "polycomConfig"
    assert [(a.name, a.value, a.line, a.element) for a in document.attributes] == [
        ("reg.1.address", "1001", 4, "reg"),
        ("reg.1.label", "Front > desk", 5, "reg"),
        ("reg.1.auth.userId", "1001", 6, "reg"),
        ("reg.1.auth.password", 'a "b"', 7, "reg.1.auth"),
        ("up.backlight.idleIntensity", "1", 9, "up"),
    ]


def test_ok_latin1_file_keeps_lines() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<c>\n<r x="é"\n y="1"/></c>'
    document = configfile.read(data.encode("latin-1"))
    assert [(a.name, a.value, a.line) for a in document.attributes] == [
        ("x", "é", 3),
        ("y", "1", 4),
    ]


def test_fail_malformed_names_the_line() -> None:
    with pytest.raises(configfile.ParseError) as caught:
        configfile.read(b"<polycomConfig>\n  <reg reg.1.address='1'>\n</polycomConfig>\n")
    assert caught.value.position[0] == 3


def test_fail_doctype_is_refused() -> None:
    data = b'<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<x a="&a;"/>'
    with pytest.raises(safexml.ForbiddenXml):
        configfile.read(data)
