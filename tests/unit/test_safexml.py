"""The one XML parser: DTDs, entities and external references refused wherever they stand."""

from __future__ import annotations

import pytest

from phoneprov.protocols import safexml

PADDING = b"<!-- " + b"x" * 5000 + b" -->\n"


@pytest.mark.parametrize(
    ("document", "what"),
    [
        pytest.param(b'<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>', "DOCTYPE", id="fail/doctype"),
        pytest.param(
            b'<?xml version="1.0"?>\n' + PADDING + b"<!DOCTYPE r>\n<r/>",
            "DOCTYPE",
            id="fail/doctype-after-4-kib",
        ),
        pytest.param(
            b"<!DOCTYPE r [" + b'<!ENTITY a "aa">' * 3 + b"]><r/>", "DOCTYPE", id="fail/laughs"
        ),
        pytest.param(
            b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>', "DOCTYPE", id="fail/external-dtd"
        ),
        pytest.param(
            '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE r><r/>'.encode("utf-16"),
            "DOCTYPE",
            id="fail/doctype-in-utf-16",
        ),
    ],
)
def test_fail_forbidden(document: bytes, what: str) -> None:
    with pytest.raises(safexml.ForbiddenXml, match=what) as caught:
        safexml.parse(document)
    line, column = caught.value.position
    assert line >= 1 and column >= 0
    assert isinstance(caught.value, safexml.ParseError)  # callers catching ParseError see it


def test_fail_undeclared_entity_is_a_parse_error() -> None:
    with pytest.raises(safexml.ParseError, match="undefined entity"):
        safexml.parse(b"<r>&a;</r>")


def test_ok_polycom_file_with_comments_and_declaration() -> None:
    root = safexml.parse(
        b'<?xml version="1.0" standalone="yes"?>\n'
        + PADDING
        + b'<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="initial.cfg"><x a="&amp;"/>'
        + b"</APPLICATION>"
    )
    assert root.tag == "APPLICATION"
    assert root.get("CONFIG_FILES") == "initial.cfg"
    child = root.find("x")
    assert child is not None and child.get("a") == "&"
