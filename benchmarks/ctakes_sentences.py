"""Which sentences to use on cTAKES input: cTAKES's own, cTAKES's joined at wrapped lines, or kiwi_cas's.

cTAKES's sentence detector ends a sentence at every line end, and notes in hospital corpora are
mostly hard-wrapped. This benchmark rebuilds that shape on held-out MTSamples notes: each note
is wrapped at 80 columns (a space becomes a line break, so every gold offset stays valid) and
every physical line is cut into sentences at end punctuation, as cTAKES's detector does. It
then scores the BERT extractor end to end with each choice of sentences:

    python benchmarks/ctakes_sentences.py [--model DIR] [--dev-split 16]

Use a model that did not see the dev notes (``kiwi-cas train bert --dev-split 16``); the
shipped model was trained on all 96 notes.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from kiwi_cas.core.evaluate import evaluate
from kiwi_cas.core.notes import NoteInput, extract_notes
from kiwi_cas.core.spans import Document
from kiwi_cas.core.splitter import join_wrapped, split_block, split_sentences
from kiwi_cas.extractors.config import BertConfig
from kiwi_cas.extractors.registry import load_extractor
from kiwi_cas.formats.documents import held_out, load_documents

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "mtsamples" / "train"


def ctakes_style(text: str) -> list[tuple[int, int]]:
    """Sentences as cTAKES's detector gives them: never across a line end."""
    return [span for m in re.finditer(r"[^\r\n]+", text) for span in split_block(text, m.start(), m.end())]


def hard_wrap(text: str, width: int = 80) -> str:
    """Wrap long lines at ``width`` by turning the last space before it into a line break (same length)."""
    chars = list(text)
    line_start = 0
    last_space = -1
    for i, c in enumerate(chars):
        if c == "\n":
            line_start, last_space = i + 1, -1
        elif c == " ":
            last_space = i
        if i - line_start >= width and last_space > line_start:
            chars[last_space] = "\n"
            line_start, last_space = last_space + 1, -1
    return "".join(chars)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--dev-split", type=int, default=16)
    args = ap.parse_args()
    docs = load_documents(TRAIN)
    dev = [Document(d.name, hard_wrap(d.text), d.annotations)
           for d in (docs[i] for i in sorted(held_out(len(docs), args.dev_split)))]
    extractor = load_extractor(BertConfig(model=Path(args.model) if args.model else None, precision="fp32"))
    choices = {
        "cTAKES sentences as given": lambda t: ctakes_style(t),
        "cTAKES sentences joined at wrapped lines": lambda t: join_wrapped(t, ctakes_style(t)),
        "kiwi_cas splitter": split_sentences,
    }
    n_line_split = sum(len(ctakes_style(d.text)) - len(join_wrapped(d.text, ctakes_style(d.text))) for d in dev)
    print(f"{len(dev)} dev notes; joining removes {n_line_split} line-split sentence breaks")
    print("| sentences | NER exact F1 | modifiers exact F1 | RE end-to-end exact F1 | negation F1 |")
    print("|---|---|---|---|---|")
    for name, sentences in choices.items():
        pred = extract_notes(extractor, [NoteInput(d.text, sentences(d.text)) for d in dev])
        r = evaluate(dev, [Document(d.name, d.text, p) for d, p in zip(dev, pred)]).as_dict()
        neg = r["modifier"]["exact"]["per_type"].get("negation", {}).get("f1", 0.0)
        print(f"| {name} | {r['ner']['exact']['micro']['f1']:.3f} | {r['modifier']['exact']['micro']['f1']:.3f} "
              f"| {r['re']['exact']['micro']['f1']:.3f} | {neg:.3f} |")


if __name__ == "__main__":
    main()
