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


_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))
_NO_BOM = ((b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<\x00?", "utf-16-be"),
           (b"<\x00?\x00", "utf-16-le"))
_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_DECODED_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _encoding(data: bytes) -> str:
    """The encoding a parser would read ``data`` in: its byte order mark, else its declaration, else UTF-8."""
    for mark, name in _BOMS + _NO_BOM:
        if data.startswith(mark):
            return name
    declared = _DECLARED.match(data[:200])
    return declared.group(1).decode("ascii").lower() if declared else "utf-8"


def _has_doctype(data: bytes) -> bool:
    """A DOCTYPE or ENTITY declaration, looked for in the text as the parser would decode it
    (UTF-7, UTF-16, UTF-32, any declared encoding), not only in the raw bytes."""
    encoding = _encoding(data)
    if encoding in ("utf-8", "utf8", "us-ascii", "ascii"):
        return _DOCTYPE.search(data) is not None
    try:
        text = data.decode(encoding)
    except LookupError:
        raise UnsafeXmlError("the XML declares an encoding kiwi_cas does not know; refused unparsed",
                             "unknown_encoding") from None
    except UnicodeDecodeError:
        raise UnsafeXmlError(f"the XML is not valid {encoding}; refused unparsed", "undecodable_xml") from None
    return _DECODED_DOCTYPE.search(text) is not None or _DOCTYPE.search(data) is not None


def check_xml_bytes(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Raise :class:`UnsafeXmlError` unless ``data`` is safe to hand to an XML parser."""
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"file is {len(data)} bytes, over the limit of {max_bytes} (--max-bytes)")
    if _has_doctype(data):
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
