"""Regenerate examples/xmi/ from examples/notes/: each note as an XMI with DKPro sentences.

The XMI inputs look like what a DKPro/INCEpTION pipeline hands over: the note text and
its sentence annotations, under a small typesystem written beside them.
Run: python examples/make_xmi.py
"""

from pathlib import Path

from cassis import Cas, TypeSystem

from kiwi_cas.sentences import split_sentences

HERE = Path(__file__).resolve().parent
SENTENCE = "de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Sentence"


def main() -> None:
    ts = TypeSystem()
    ts.create_type(SENTENCE, supertypeName="uima.tcas.Annotation")
    out = HERE / "xmi"
    out.mkdir(exist_ok=True)
    (out / "TypeSystem.xml").write_text(ts.to_xml())
    for note in sorted((HERE / "notes").glob("*.txt")):
        cas = Cas(typesystem=ts)
        cas.sofa_string = note.read_text(encoding="utf-8")
        cas.sofa_mime = "text/plain"
        for s, e in split_sentences(cas.sofa_string):
            cas.add(ts.get_type(SENTENCE)(begin=s, end=e))
        cas.to_xmi(out / f"{note.stem}.xmi", pretty_print=True)


if __name__ == "__main__":
    main()
