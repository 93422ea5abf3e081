"""The ownership rule, in code: kiwi_cas only adds, and only changes or removes what it created itself.

Kiwi types (namespace ``org.clinicalnlp.kiwi.type``) are kiwi_cas's by name. Structures of
other typesystems that a run creates (cTAKES mentions, modifiers, relations and their
arguments), and every feature value it sets on another tool's structure, are written down in
one ``RunRecord`` per run and view. The next run undoes exactly that before it writes again:
it removes what the record lists as created and puts every changed value back, so
``annotate(annotate(x)) == annotate(x)`` and the input's own structures come out as they came in.
The record is an ordinary indexed feature structure, so it survives a save and load through
UIMA Java, the CAS Editor or any other tool that keeps unknown-to-it types.
"""

from __future__ import annotations

from cassis import Cas

from kiwi_cas.core import schema

RUN_RECORD_TYPE = f"{schema.NAMESPACE}.RunRecord"
FEATURE_CHANGE_TYPE = f"{schema.NAMESPACE}.FeatureChange"
_INTEGERS = {"uima.cas.Integer", "uima.cas.Long", "uima.cas.Short", "uima.cas.Byte"}
_FLOATS = {"uima.cas.Float", "uima.cas.Double"}


def is_kiwi(fs) -> bool:
    """True for structures of the Kiwi types, which kiwi_cas owns wherever they are."""
    return fs.type.name.startswith(schema.NAMESPACE + ".")


def _is_primitive(range_name: str) -> bool:
    return range_name in _INTEGERS | _FLOATS | {"uima.cas.Boolean", "uima.cas.String"}


def _from_text(range_name: str, text: str | None):
    if text is None:
        return None
    if range_name in _INTEGERS:
        return int(text)
    if range_name in _FLOATS:
        return float(text)
    if range_name == "uima.cas.Boolean":
        return text == "true"
    return text


def _to_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RunRecorder:
    """Collects what one run creates outside the Kiwi types and changes on others' structures."""

    def __init__(self, view: Cas) -> None:
        self.view = view
        self.created: list = []
        self._created_ids: set[int] = set()
        self.changes: list[tuple[object, str, object]] = []  # (structure, feature, value before)
        self._changed: set[tuple[int, str]] = set()

    def add(self, fs) -> None:
        """Add a new structure of another typesystem to the view, as this run's own."""
        self.view.add(fs)
        self.created.append(fs)
        self._created_ids.add(id(fs))

    def owns(self, fs) -> bool:
        return is_kiwi(fs) or id(fs) in self._created_ids

    def set(self, fs, feature: str, value, mode: str = "overwrite") -> bool:
        """Set ``fs.feature = value`` under the ownership rule; returns whether it was set.

        On structures this run created, always. On anyone else's, by ``mode``: ``keep`` never,
        ``fill`` only where the feature has no value, ``overwrite`` always; the value before is
        recorded so the next run can restore it.
        """
        if fs.type.get_feature(feature) is None:
            return False
        if self.owns(fs):
            setattr(fs, feature, value)
            return True
        before = getattr(fs, feature, None)
        if mode == "keep" or (mode == "fill" and before is not None) or before == value:
            return False
        if (id(fs), feature) not in self._changed:  # keep the value from before the run, not an interim one
            self._changed.add((id(fs), feature))
            self.changes.append((fs, feature, before))
        setattr(fs, feature, value)
        return True

    def commit(self, extractor_name: str) -> None:
        """Write the RunRecord (nothing when the run only wrote Kiwi types)."""
        if not self.created and not self.changes:
            return
        ts = self.view.typesystem
        change_t = ts.get_type(FEATURE_CHANGE_TYPE)
        fs_array = ts.get_type("uima.cas.FSArray")
        changes = []
        for fs, feature, before in self.changes:
            range_name = fs.type.get_feature(feature).rangeType.name
            primitive = _is_primitive(range_name)
            changes.append(change_t(target=fs, feature=feature, wasSet=before is not None,
                                    previousValue=_to_text(before) if primitive else None,
                                    previousReference=None if primitive else before))
        record = ts.get_type(RUN_RECORD_TYPE)(extractor=extractor_name, created=fs_array(elements=list(self.created)),
                                              changes=fs_array(elements=changes))
        self.view.add(record)


def undo_previous_runs(view: Cas) -> bool:
    """Undo every earlier run recorded in the view: restore changed values, remove what was created.

    Returns whether the view held a record (outputs of kiwi_cas 0.1.0 hold none).
    """
    if not view.typesystem.contains_type(RUN_RECORD_TYPE):
        return False
    records = list(view.select(RUN_RECORD_TYPE))
    for record in reversed(records):
        for change in reversed(list(_elements(record.get("changes")))):
            target, feature = change.get("target"), change.get("feature")
            if target is None or not feature or target.type.get_feature(feature) is None:
                continue
            range_name = target.type.get_feature(feature).rangeType.name
            if not change.get("wasSet"):
                value = None
            elif _is_primitive(range_name):
                value = _from_text(range_name, change.get("previousValue"))
            else:
                value = change.get("previousReference")
            setattr(target, feature, value)
        for fs in _elements(record.get("created")):
            _remove_quietly(view, fs)
        view.remove(record)
    return bool(records)


def _elements(array) -> list:
    return list(array.elements or []) if array is not None else []


def _remove_quietly(view: Cas, fs) -> None:
    try:
        view.remove(fs)
    except ValueError:
        pass  # already out of the index
