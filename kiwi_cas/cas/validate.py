"""Checks an XMI document the way UIMA Java's strict deserializer would, before cassis reads it.

cassis quietly keeps the last of two structures with the same xmi:id, leaves a reference to a
missing structure unset, and accepts integers or offsets that UIMA Java rejects; kiwi_cas
would then write an output that UIMA Java refuses, or lose data. So a document with a
duplicate xmi:id, a reference to a structure that does not exist, an integer out of its
type's range, or an annotation offset outside its text fails, naming the xmi:id, type,
feature and line: never the value, which may be note text.
"""

from __future__ import annotations

from cassis import TypeSystem
from lxml import etree

from kiwi_cas.errors import InputError

XMI_ID = "{http://www.omg.org/XMI}id"
_INT_RANGES = {
    "uima.cas.Integer": 2 ** 31, "uima.cas.Long": 2 ** 63, "uima.cas.Short": 2 ** 15, "uima.cas.Byte": 2 ** 7,
}
_PRIMITIVES = set(_INT_RANGES) | {"uima.cas.Float", "uima.cas.Double", "uima.cas.Boolean", "uima.cas.String"}
_REFERENCE_LISTS = {"uima.cas.FSArray", "uima.cas.FSList", "uima.cas.NonEmptyFSList"}
_SKIP = {"uima.cas.NULL", "uima.cas.View", "uima.cas.Sofa"}


class _Plan:
    """Per type: which attributes hold integers, which hold references."""

    def __init__(self, typesystem: TypeSystem, name: str) -> None:
        t = typesystem.get_type(name)
        self.integers: dict[str, int] = {}
        self.references: set[str] = set()
        primitive_array = name.endswith("Array") and name != "uima.cas.FSArray"
        for f in t.all_features:
            if f.name == "sofa" or primitive_array:
                continue
            rng = f.rangeType.name
            if rng in _INT_RANGES:
                self.integers[f.name] = _INT_RANGES[rng]
            elif rng in _REFERENCE_LISTS or (rng not in _PRIMITIVES and not rng.endswith("Array")
                                             and not rng.endswith("List") and not typesystem.is_instance_of(
                                                 rng, "uima.cas.String")):
                self.references.add(f.name)
        self.annotation = typesystem.is_instance_of(name, "uima.tcas.Annotation")


def _bad(code: str, element: etree._Element, what: str) -> InputError:
    return InputError(f"{what} (line {element.sourceline})", code)


def validate(root: etree._Element, typesystem: TypeSystem, type_name_of) -> None:
    """Raise :class:`InputError` at the first structure UIMA Java would reject."""
    seen: dict[str, etree._Element] = {}
    sofa_lengths: dict[str, int] = {}
    children = [c for c in root if isinstance(c.tag, str)]
    for el in children:
        xid = el.get(XMI_ID)
        if xid is None:
            continue
        if xid in seen:
            raise _bad("duplicate_id", el, f"xmi:id {xid} is used by two structures (the other at line "
                                           f"{seen[xid].sourceline})")
        seen[xid] = el
        if type_name_of(el) == "uima.cas.Sofa":
            text = el.get("sofaString")
            sofa_lengths[xid] = len(text.encode("utf-16-le")) // 2 if text is not None else -1
    plans: dict[str, _Plan | None] = {}
    for el in children:
        name = type_name_of(el)
        if name is None or name in _SKIP:
            if name == "uima.cas.View":
                for member in (el.get("members") or "").split():
                    if member not in seen:
                        raise _bad("dangling_reference", el, f"a view lists xmi:id {member}, which does not exist")
            continue
        if name not in plans:
            plans[name] = _Plan(typesystem, name) if typesystem.contains_type(name) else None
        plan = plans[name]
        if plan is None:
            continue  # an unknown type: failed or dropped (--lenient) elsewhere
        where = f"xmi:id {el.get(XMI_ID)} ({name})"
        for feature, limit in plan.integers.items():
            value = el.get(feature)
            if value is None:
                continue
            try:
                number = int(value)
            except ValueError:
                raise _bad("bad_integer", el, f"{where}: feature {feature} is not an integer") from None
            if not -limit <= number < limit:
                raise _bad("integer_out_of_range", el, f"{where}: feature {feature} is out of its type's range")
        for feature in plan.references:
            for ref in (el.get(feature) or "").split():
                if ref not in seen:
                    raise _bad("dangling_reference", el, f"{where}: feature {feature} refers to xmi:id {ref}, "
                                                         "which does not exist")
        if plan.annotation:
            length = sofa_lengths.get(el.get("sofa", ""), None)
            begin, end = int(el.get("begin", "0")), int(el.get("end", "0"))
            if begin < 0 or end < begin or (length is not None and length >= 0 and end > length):
                raise _bad("offsets_out_of_range", el, f"{where}: offsets {begin}-{end} lie outside its text "
                                                       f"(0-{length})")
