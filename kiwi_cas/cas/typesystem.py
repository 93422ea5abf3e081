"""The bundled Kiwi typesystem, input typesystems with their imports flattened, and merging.

cassis ignores ``<imports>``; a typesystem that extends an imported type then fails with
a missing supertype. We resolve imports ourselves (``location`` relative to the importing
file, ``name`` as a dotted path under the file's folder or ``UIMA_DATAPATH``), collect all
type descriptions into one flat document and load that.
"""

from __future__ import annotations

import copy
import os
from functools import lru_cache
from pathlib import Path

from cassis import TypeSystem, load_typesystem
from lxml import etree

from kiwi_cas.cas.safexml import parse_xml, xml_syntax_message
from kiwi_cas.core import schema
from kiwi_cas.errors import TypeSystemError, library_detail

_NS = "http://uima.apache.org/resourceSpecifier"
TYPESYSTEM_FILENAMES = ("TypeSystem.xml", "typesystem.xml")


def kiwi_typesystem_path() -> Path:
    return schema.TYPESYSTEM_PATH


def ctakes_typesystem_path() -> Path:
    """The cTAKES typesystem bundled for PBJ and tests (Apache-2.0, see its PROVENANCE.md)."""
    return schema.TYPESYSTEM_PATH.parent / "ctakes" / "TypeSystem.xml"


#: a typesystem file larger than this is refused (real ones are well under 1 MB)
TYPESYSTEM_MAX_BYTES = 16 * 1024 * 1024


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _import_target(imp: etree._Element, here: Path, roots: tuple[Path, ...]) -> Path:
    """Where an ``<import>`` points: a relative ``location`` inside the typesystem's folder, or a dotted
    ``name`` under that folder or ``UIMA_DATAPATH``. Anything else (absolute paths, URLs, ``..`` out of
    the folder) is refused: a typesystem from elsewhere must not make kiwi_cas read arbitrary files."""
    location = imp.get("location")
    if location:
        target = (here.parent / location).resolve()
        if Path(location).is_absolute() or ":" in location or not any(_inside(target, r) for r in roots):
            raise TypeSystemError(f"{here.name}: import location {location!r} is outside the typesystem's folder; "
                                  "refused (copy the imported file beside it)")
        return target
    name = imp.get("name")
    if not name:
        raise TypeSystemError(f"{here.name}: <import> without location or name")
    if not all(part.isidentifier() for part in name.split(".")):
        raise TypeSystemError(f"{here.name}: import name {name!r} is not a dotted name")
    rel = Path(*name.split(".")).with_suffix(".xml")
    searched = (here.parent, *roots)
    for root in searched:
        if (root / rel).is_file():
            return (root / rel).resolve()
    raise TypeSystemError(f"{here.name}: import {name!r} not found (searched {len(searched)} folders; set "
                          "UIMA_DATAPATH)")


def _read_typesystem(path: Path) -> bytes:
    if not path.is_file():
        raise TypeSystemError(f"{path.name}: not a regular file")
    with path.open("rb") as fh:
        data = fh.read(TYPESYSTEM_MAX_BYTES + 1)
    if len(data) > TYPESYSTEM_MAX_BYTES:
        raise TypeSystemError(f"{path.name}: over {TYPESYSTEM_MAX_BYTES // (1024 * 1024)} MB; refused")
    return data


def _collect_types(path: Path, seen: set[Path], out: list[etree._Element], roots: tuple[Path, ...] = ()) -> None:
    path = path.resolve()
    if path in seen:
        return
    seen.add(path)
    if not roots:  # the file the user gave: its folder, and UIMA_DATAPATH, bound what its imports may read
        roots = (path.parent, *(Path(p).resolve() for p in os.environ.get("UIMA_DATAPATH", "").split(os.pathsep)
                                if p))
    try:
        root = parse_xml(_read_typesystem(path))
    except (OSError, etree.XMLSyntaxError, ValueError) as exc:
        reason = xml_syntax_message(exc) if isinstance(exc, etree.XMLSyntaxError) else \
            exc.strerror if isinstance(exc, OSError) else str(exc)
        raise TypeSystemError(f"{path.name}: cannot read typesystem: {reason}") from exc
    for imp in root.iter(f"{{{_NS}}}import"):
        _collect_types(_import_target(imp, path, roots), seen, out, roots)
    out.extend(root.iter(f"{{{_NS}}}typeDescription"))


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _merge_into(types: dict[str, etree._Element], t: etree._Element, origin: str) -> None:
    """Add one type description, joining features with an existing one of the same name.

    As in UIMA's type merging, descriptions may differ; a supertype or a feature range that
    differs is a conflict. (cassis's own merge also rejects differing descriptions, which
    real DKPro typesystems have.)
    """
    q = lambda tag: f"{{{_NS}}}{tag}"  # noqa: E731
    name = _text(t.find(q("name")))
    if name not in types:
        types[name] = copy.deepcopy(t)
        return
    old = types[name]
    if _text(old.find(q("supertypeName"))) != _text(t.find(q("supertypeName"))):
        raise TypeSystemError(f"type {name} has different supertypes in {origin} and an earlier typesystem")
    old_feats = old.find(q("features"))
    if old_feats is None:
        old_feats = etree.SubElement(old, q("features"))
    known = {_text(f.find(q("name"))): f for f in old_feats.findall(q("featureDescription"))}
    new_feats = t.find(q("features"))
    for f in (new_feats.findall(q("featureDescription")) if new_feats is not None else []):
        fname = _text(f.find(q("name")))
        if fname not in known:
            old_feats.append(copy.deepcopy(f))
            continue
        for tag in ("rangeTypeName", "elementType"):
            if _text(known[fname].find(q(tag))) != _text(f.find(q(tag))):
                raise TypeSystemError(f"feature {name}:{fname} has a different {tag} in {origin}")


def _check_references(types: dict[str, etree._Element], origin: dict[str, str]) -> None:
    """Every supertype and feature range must be declared somewhere: name what is missing and who needs it
    (cassis would only say ``KeyError: 'org...UmlsConcept'``)."""
    q = lambda tag: f"{{{_NS}}}{tag}"  # noqa: E731
    for name, t in types.items():
        needs = [("extends", _text(t.find(q("supertypeName"))))]
        for f in t.iter(q("featureDescription")):
            for tag in ("rangeTypeName", "elementType"):
                needs.append((f"feature {_text(f.find(q('name')))} ranges over", _text(f.find(q(tag)))))
        for how, needed in needs:
            if needed and not needed.startswith("uima.") and needed not in types:
                raise TypeSystemError(f"type {name} (from {origin[name]}) {how} {needed}, which no typesystem "
                                      "given declares; pass --typesystem with the file that declares it too")


def merged_xml(paths: list[Path]) -> bytes:
    """One flat typesystem document: every file's types (imports resolved), same-named types joined."""
    merged: dict[str, etree._Element] = {}
    origin: dict[str, str] = {}
    for path in paths:
        collected: list[etree._Element] = []
        _collect_types(Path(path), set(), collected)
        for t in collected:
            _merge_into(merged, t, Path(path).name)
            origin.setdefault(_text(t.find(f"{{{_NS}}}name")), Path(path).name)
    _check_references(merged, origin)
    root = etree.Element(f"{{{_NS}}}typeSystemDescription", nsmap={None: _NS})
    holder = etree.SubElement(root, f"{{{_NS}}}types")
    for t in merged.values():
        holder.append(t)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@lru_cache(maxsize=64)
def merged_typesystem(paths: tuple[str, ...]) -> TypeSystem:
    """Input typesystems (imports flattened) merged with the Kiwi typesystem; cached per path set."""
    data = merged_xml([Path(p) for p in paths] + [kiwi_typesystem_path()])
    try:
        return load_typesystem(data.decode("utf-8"))
    except Exception as exc:  # cassis raises bare ValueError/KeyError for inconsistent type lists
        raise TypeSystemError(f"invalid typesystem ({type(exc).__name__} in the typesystem reader)"
                              + library_detail(exc)) from exc


def find_beside(input_path: Path) -> Path | None:
    """A ``TypeSystem.xml`` / ``typesystem.xml`` in the input's folder, if any."""
    for name in TYPESYSTEM_FILENAMES:
        candidate = input_path.parent / name
        if candidate.exists():
            return candidate
    return None
