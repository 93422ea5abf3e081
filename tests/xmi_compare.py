"""Raw-XMI comparisons for the ownership rule, independent of cassis: by xmi:id, attribute by attribute."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from lxml import etree

XMI_ID = "{http://www.omg.org/XMI}id"
CAS_NS = "http:///uima/cas.ecore"
KIWI_NS = "http:///org/clinicalnlp/kiwi/type.ecore"


def elements(path: Path) -> dict[str, etree._Element]:
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    return {e.get(XMI_ID): e for e in root if isinstance(e.tag, str) and e.get(XMI_ID) is not None}


def views(path: Path) -> dict[str, set[str]]:
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    out: dict[str, set[str]] = {}
    for e in root.iter(f"{{{CAS_NS}}}View"):
        out.setdefault(e.get("sofa"), set()).update((e.get("members") or "").split())
    return out


def _content(e: etree._Element) -> tuple:
    children = tuple(sorted((etree.QName(c).localname, c.text or "") for c in e if isinstance(c.tag, str)))
    return e.tag, dict(e.attrib), children


def changed_input_structures(before: Path, after: Path) -> list[str]:
    """Every input feature structure (and Sofa) must be in the output with the same type and values;
    every view keeps its members. Returns what differs (empty when nothing does)."""
    a, b = elements(before), elements(after)
    problems = []
    for xid, e in a.items():
        if xid not in b:
            problems.append(f"{xid} {etree.QName(e).localname}: missing")
        elif _content(e) != _content(b[xid]):
            old, new = _content(e), _content(b[xid])
            keys = {k for k in set(old[1]) | set(new[1]) if old[1].get(k) != new[1].get(k)}
            problems.append(f"{xid} {etree.QName(e).localname}: {sorted(keys) or 'children'} changed")
    va, vb = views(before), views(after)
    for sofa, members in va.items():
        if not members <= vb.get(sofa, set()):
            problems.append(f"view of sofa {sofa}: lost members {sorted(members - vb.get(sofa, set()))[:5]}")
    return problems


def signature(path: Path) -> Counter:
    """A multiset of feature structures by content, references followed to their target's content
    (so two files compare equal when they hold the same structures, whatever their xmi:ids)."""
    els = elements(path)
    memo: dict[str, tuple] = {}

    def sig(xid: str, depth: int = 0) -> tuple:
        if xid in memo:
            return memo[xid]
        e = els.get(xid)
        if e is None or depth > 4:
            return ("ref", xid if e is None else etree.QName(e).localname)
        attrs = []
        for k, v in sorted(e.attrib.items()):
            if k == XMI_ID:
                continue
            parts = v.split()
            if parts and all(p in els for p in parts) and k not in ("begin", "end", "sofaNum") and \
                    not k.startswith("sofa") and e.tag != f"{{{CAS_NS}}}View":
                attrs.append((k, tuple(sig(p, depth + 1) for p in parts)))
            else:
                attrs.append((k, v))
        memo[xid] = (etree.QName(e).localname, tuple(attrs))
        return memo[xid]

    return Counter(sig(x) for x, e in els.items() if e.tag != f"{{{CAS_NS}}}View")


def orphans(before: Path, after: Path) -> list[str]:
    """Structures the run added that no index holds and no Kiwi structure refers to."""
    a, b = elements(before), elements(after)
    indexed = set().union(*views(after).values()) if views(after) else set()
    reachable = set(indexed)
    kiwi = [e for x, e in b.items() if x in indexed and e.tag.startswith(f"{{{KIWI_NS}}}")]
    stack = list(kiwi)
    while stack:
        e = stack.pop()
        for v in e.attrib.values():
            for p in v.split():
                if p in b and p not in reachable:
                    reachable.add(p)
                    stack.append(b[p])
    new_unindexed = [x for x, e in b.items() if x not in a and x not in reachable
                     and e.tag not in (f"{{{CAS_NS}}}Sofa", f"{{{CAS_NS}}}NULL")]
    return [f"{x} {etree.QName(b[x]).localname}" for x in new_unindexed]
