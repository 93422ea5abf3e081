"""Reading XMI / text into a CAS safely, and saving a CAS atomically.

Reading never drops data silently: structures of types the typesystem lacks fail the
file with the missing type names, unless the caller opts into ``lenient`` (then the
number dropped is reported). Writing goes to a temporary file in the target folder,
then ``os.replace``: an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import os
import re
import secrets
import warnings
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from cassis import Cas, TypeSystem, load_cas_from_xmi
from lxml import etree

from kiwi_cas.cas.safexml import DEFAULT_MAX_BYTES, parse_xml, xml_syntax_message
from kiwi_cas.cas.typesystem import find_beside, merged_typesystem
from kiwi_cas.cas.validate import validate
from kiwi_cas.errors import InputError, library_detail

_XMI_NS = "http://www.omg.org/XMI"
_CAS_NS = "http:///uima/cas.ecore"
# characters XML 1.0 cannot carry, even as character references
INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class LoadedCas:
    cas: Cas
    typesystem_paths: tuple[str, ...]
    dropped: int = 0  # structures of unknown types dropped under --lenient
    dropped_types: Counter = field(default_factory=Counter)  # ... by type name


def type_name_of(element: etree._Element) -> str | None:
    """UIMA type name of a top-level XMI element (``{http:///a/b/c.ecore}T`` -> ``a.b.c.T``)."""
    qname = etree.QName(element)
    ns = qname.namespace or ""
    if ns == _XMI_NS or not ns.startswith("http:///") or not ns.endswith(".ecore"):
        return None
    package = ns[len("http:///"):-len(".ecore")].replace("/", ".")
    return f"{package}.{qname.localname}"


@dataclass
class XmiScan:
    """What the safe parser saw in an XMI before cassis reads it."""

    counts: Counter  # top-level feature structures per type name
    unknown_features: set[str]  # ``Type:feature`` names the typesystem does not define
    sofa_uris: dict[str, str]  # sofaID -> sofaURI (cassis reads and writes no sofaURI)


def scan_types(data: bytes, max_bytes: int, typesystem: TypeSystem | None = None) -> XmiScan:
    """Count top-level feature structures per type name, without cassis (safe parser).

    With a typesystem, also finds ``Type:feature`` names used in the XMI that the typesystem
    does not define (cassis fails on those even in lenient mode).
    """
    try:
        root = parse_xml(data, max_bytes)
    except etree.XMLSyntaxError as exc:
        raise InputError(code="malformed_xml", message=xml_syntax_message(exc)) from exc
    if etree.QName(root).localname != "XMI":
        raise InputError(code="not_xmi", message="the root element is not xmi:XMI")
    counts: Counter = Counter()
    unknown_features: set[str] = set()
    sofa_uris: dict[str, str] = {}
    feature_names: dict[str, set[str] | None] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        name = type_name_of(child)
        if not name or name in ("uima.cas.NULL", "uima.cas.View"):
            continue
        counts[name] += 1
        if name == "uima.cas.Sofa":
            if child.get("sofaArray") is not None:
                raise InputError(code="sofa_array", message=f"view {child.get('sofaID')!r} holds its data as a "
                                 "sofaArray, which kiwi_cas cannot carry through; refused rather than dropped")
            if child.get("sofaURI") is not None:
                sofa_uris[child.get("sofaID", "")] = child.get("sofaURI")
        if typesystem is None or name == "uima.cas.Sofa":
            continue
        if name not in feature_names:
            feature_names[name] = ({f.name for f in typesystem.get_type(name).all_features}
                                   if typesystem.contains_type(name) else None)
        known = feature_names[name]
        if known is None:
            continue
        used = {etree.QName(a).localname for a in child.attrib if not str(a).startswith("{")}
        used |= {etree.QName(c).localname for c in child if isinstance(c.tag, str)}
        unknown_features.update(f"{name}:{f}" for f in used - known - {"sofa"})
    if typesystem is not None:
        validate(root, typesystem, type_name_of)
    return XmiScan(counts, unknown_features, sofa_uris)


def resolve_typesystems(input_path: Path, explicit: tuple[Path, ...]) -> tuple[str, ...]:
    """``--typesystem`` files if given, else the one beside the input, else none."""
    if explicit:
        return tuple(str(p.resolve()) for p in explicit)
    beside = find_beside(input_path)
    return (str(beside.resolve()),) if beside else ()


def load_xmi(path: Path, typesystems: tuple[Path, ...] = (), lenient: bool = False,
             max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedCas:
    data = read_bytes(path, max_bytes)
    return load_xmi_bytes(data, resolve_typesystems(path, typesystems), lenient, max_bytes)


def load_xmi_bytes(data: bytes, ts_paths: tuple[str, ...], lenient: bool = False,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedCas:
    """XMI from memory (a file's bytes, or a message body), typesystem paths already resolved."""
    if not data.strip():
        raise InputError(code="empty_file", message="the file is empty")
    ts = merged_typesystem(ts_paths)  # TypeSystemError and UnsafeXmlError are InputErrors themselves
    scan = scan_types(data, max_bytes, ts)
    counts, unknown_features = scan.counts, scan.unknown_features
    if unknown_features:
        shown = ", ".join(sorted(unknown_features)[:5])
        raise InputError(code="unknown_feature", message=f"features missing from the typesystem: {shown}; pass --typesystem "
                         "with the producing tool's typesystem (feature values are never dropped, even with --lenient)")
    missing = sorted(n for n in counts if not ts.contains_type(n))
    dropped = sum(counts[n] for n in missing)
    if missing and not lenient:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise InputError(code="unknown_type", message=f"{dropped} structures of types missing from the typesystem: {shown}; "
                         "pass --typesystem with the producing tool's typesystem, or --lenient to drop them")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cas = load_cas_from_xmi(BytesIO(data), typesystem=ts, lenient=lenient, trusted=False)
    except Exception as exc:  # cassis raises many types for bad XMI (KeyError, ValueError, TypeNotFoundError)
        raise InputError(code="bad_xmi", message=f"cannot load XMI ({type(exc).__name__} in the XMI reader)"
                         + library_detail(exc)) from exc
    for sofa_id, uri in scan.sofa_uris.items():
        cas.get_view(sofa_id).sofa_uri = uri
    return LoadedCas(cas, ts_paths, dropped, Counter({n: counts[n] for n in missing}))


def load_text_bytes(data: bytes, encoding: str = "utf-8") -> LoadedCas:
    """A plain-text note as a CAS (Kiwi typesystem only); a leading BOM is dropped."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(code="encoding", message=f"not valid {encoding} at byte {exc.start} (use --encoding)") from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    cas = Cas(typesystem=merged_typesystem(()))
    cas.sofa_string = text
    cas.sofa_mime = "text/plain"
    return LoadedCas(cas, ())


def load_text(path: Path, encoding: str = "utf-8", max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedCas:
    return load_text_bytes(read_bytes(path, max_bytes), encoding)


def is_text_path(path: Path) -> bool:
    """``.txt`` files are plain-text notes; everything else is read as XMI."""
    return path.suffix.lower() == ".txt"


def load_input(path: Path, typesystems: tuple[Path, ...] = (), lenient: bool = False,
               encoding: str = "utf-8", max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedCas:
    """A file as a CAS: ``.txt`` as a plain-text note, anything else as XMI."""
    if is_text_path(path):
        return load_text(path, encoding, max_bytes)
    return load_xmi(path, typesystems, lenient, max_bytes)


def check_xml_text(text: str) -> None:
    """Fail, naming the first offending character's code and offset (never the text), if XMI cannot hold it."""
    bad = INVALID_XML_CHARS.search(text)
    if bad:
        n = len(INVALID_XML_CHARS.findall(text))
        raise InputError(code="xml_invalid_chars", message=f"the note holds {n} characters XML 1.0 cannot carry (first U+{ord(bad.group()):04X} at offset "
            f"{bad.start()}); use --output-format jsoncas, or --replace-invalid-xml-chars to substitute spaces "
            "(same length, offsets unchanged)")


def replace_invalid_xml_chars(text: str) -> str:
    """Same-length substitution with spaces: every offset stays valid."""
    return INVALID_XML_CHARS.sub(" ", text)


def serialize(cas: Cas, fmt: str) -> bytes:
    if fmt == "jsoncas":
        return cas.to_json().encode("utf-8")
    uris = {}
    for view in cas.views:
        text = view.sofa.sofaString
        if text:
            check_xml_text(text)
        if view.sofa.sofaURI is not None:
            uris[str(view.sofa.xmiID)] = view.sofa.sofaURI
    data = cas.to_xmi().encode("utf-8")
    return _with_sofa_uris(data, uris) if uris else data


def _with_sofa_uris(data: bytes, uris: dict[str, str]) -> bytes:
    """Put back the ``sofaURI`` attributes that cassis does not write (by the Sofa's xmi:id)."""
    root = parse_xml(data, max(len(data) + 1, DEFAULT_MAX_BYTES))
    for sofa in root.iter(f"{{{_CAS_NS}}}Sofa"):
        uri = uris.get(sofa.get(f"{{{_XMI_NS}}}id", ""))
        if uri is not None:
            sofa.set("sofaURI", uri)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a hidden temp file beside ``path``, fsync, then rename over it.

    The temp file is created with mode 0666 minus the umask, as ``open`` would create ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_typesystem(ts: TypeSystem, path: Path) -> None:
    atomic_write(path, ts.to_xml().encode("utf-8"))


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A file's bytes, refusing files over ``max_bytes`` before reading them."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InputError(code="too_large", message=f"file is {size} bytes, over the limit of {max_bytes} (--max-bytes)")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(code="unreadable", message=f"cannot read: {exc.strerror}") from exc
