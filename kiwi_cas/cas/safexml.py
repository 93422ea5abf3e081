"""Guards for untrusted XML (XMI and typesystem files) before any parser sees them.

UIMA Java refuses a DOCTYPE in XMI; so do we, which rules out external entities (file
reads, network), parameter entities, billion laughs and quadratic blow-up in one check.
Sizes are bounded, and lxml is only ever called with entity resolution and network off.
"""

from __future__ import annotations

import re

from lxml import etree

from kiwi_cas.errors import UnsafeXmlError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _as_utf8_view(data: bytes) -> bytes:
    """Bytes in which a DOCTYPE would be visible, whatever the declared encoding."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        enc = "utf-16-le" if data.startswith(b"\xff\xfe") or data[:1] == b"<" else "utf-16-be"
        try:
            return data.decode(enc).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeXmlError("undecodable UTF-16 XML") from exc
    return data


def check_xml_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Raise :class:`UnsafeXmlError` unless ``data`` is safe to hand to an XML parser."""
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"file is {len(data)} bytes, over the limit of {max_bytes} (--max-bytes)")
    if _DOCTYPE.search(_as_utf8_view(data)):
        raise UnsafeXmlError("DOCTYPE/ENTITY declarations are not allowed in XMI (as in UIMA Java); refused unparsed")


def safe_parser() -> etree.XMLParser:
    """An lxml parser that never resolves entities, loads DTDs or touches the network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_comments=False)


_ERROR_NAMES = {v: k for k, v in vars(etree.ErrorTypes).items() if isinstance(v, int)}


def xml_syntax_message(exc: etree.XMLSyntaxError) -> str:
    """libxml2's error as a fixed name and a position: its own message quotes tag names and text."""
    name = _ERROR_NAMES.get(exc.code, f"error {exc.code}").removeprefix("ERR_").lower().replace("_", " ")
    line, column = exc.position if exc.position else (exc.lineno, 0)
    return f"not well-formed XML: {name} at line {line}, column {column}"


def parse_xml(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    check_xml_bytes(data, max_bytes)
    return etree.fromstring(data, parser=safe_parser())
