"""Parse XML without DTDs: the one XML parser phoneprov uses, for any document.

Phones' requests (the Lync device update POST), files in the boot directory
and rendered templates are all parsed here. A document type declaration is
refused wherever it stands, and with it every entity declaration and external
reference (billion laughs, quadratic blow-up, XXE: the attacks defusedxml
lists). No Polycom configuration file and no device update request carries a
DTD, so refusing one costs nothing. Checking the first bytes for ``<!DOCTYPE``
is not enough: comments, processing instructions and white space may come
before it (XML 1.0 §2.8, production [22] prolog).

Pure: bytes in, an element tree out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml.ElementTree import DefusedXMLParser

ParseError = ET.ParseError


class ForbiddenXml(ET.ParseError):
    """The document declares a DTD, an entity or an external reference.

    A ParseError, so callers that report malformed XML report this too; its
    ``position`` is (line, column) of the declaration, as for ParseError.
    """


def parse(data: bytes) -> ET.Element:
    """Return the root element of ``data``.

    Raises ForbiddenXml for a DOCTYPE, entity declaration or external reference
    anywhere in the document, and ParseError when it is not well-formed.
    """
    parser = DefusedXMLParser(
        target=ET.TreeBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        return parser.close()
    except DefusedXmlException as refused:
        expat = parser.parser
        line, column = int(expat.CurrentLineNumber), int(expat.CurrentColumnNumber)
        error = ForbiddenXml(f"{_what(refused)} is not accepted: line {line}, column {column}")
        error.code = 0
        error.position = (line, column)
        raise error from None


def _what(refused: DefusedXmlException) -> str:
    if isinstance(refused, DTDForbidden):
        return "a DOCTYPE (document type declaration)"
    if isinstance(refused, EntitiesForbidden):
        return "an entity declaration"
    return "an external reference"
