"""The ONNX Runtime for the BERT extractor (the default): fp32, graph optimizations on, batch-invariant.

Why this runtime: torch's dynamic int8 quantization is deprecated (a warning on every run) and
computes its activation scales over the whole padded batch, so a note's annotations changed
with the notes that shared its batch. ONNX Runtime in fp32 runs the weights as trained, gives
each sequence the same result whatever else is in the batch, prints nothing, and on this
2-core CPU is faster than torch fp32 (README, "Speed"; ``benchmarks/runtimes.py``).

The ONNX graphs (encoder with both tagging heads, and the pair scorer) are exported from the
model folder with torch, weights stored as fp16 and cast to fp32 once when the session loads.
The embedded model ships them (``bert-mtsamples/onnx/``, made by ``kiwi-cas models export-onnx``),
so a plain ``pip install`` runs it with neither torch nor transformers; for any other model folder
they are exported once into ``$KIWI_CAS_HOME`` (default: the package's models folder), keyed by
the weights' hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np

from kiwi_cas.extractors.bert.meta import META_FILE, read_meta
from kiwi_cas.extractors.bert.runtime import Encoded
from kiwi_cas.extractors.settings import mark_cache_source, models_home, remove_stale_caches, thread_count

ENCODER, PAIRS = "encoder.onnx", "pairs.onnx"
FORMAT = "6"  # of the exported graphs; part of the cache key


class FastTokenizer:
    """The model folder's ``tokenizer.json`` through the ``tokenizers`` library: what the extractor calls
    of a Hugging Face fast tokenizer, without importing transformers."""

    def __init__(self, model_dir: Path) -> None:
        import json

        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.no_truncation()
        config = json.loads((model_dir / "tokenizer_config.json").read_text())
        vocab = self._tok.get_vocab()
        self.cls_token_id = vocab[config.get("cls_token", "[CLS]")]
        self.sep_token_id = vocab[config.get("sep_token", "[SEP]")]
        self.pad_token_id = vocab[config.get("pad_token", "[PAD]")]

    def __call__(self, texts, add_special_tokens: bool = False, return_offsets_mapping: bool = True) -> dict:
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings], "offset_mapping": [e.offsets for e in encodings]}


def weights_key(model_dir: Path) -> str:
    """Hash of what the exported graphs are made from: the weights, the encoder config and the
    parts of the meta that shape the network. Decoding rules in the meta are read at run time
    and are not part of it, so retuning them never asks for a new export."""
    import json

    h = hashlib.sha256(FORMAT.encode())
    for name in ("model.safetensors", "config.json"):
        with (model_dir / name).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    meta = read_meta(model_dir)
    shape = [meta.entity_labels, meta.modifier_labels, meta.rel_dim] + ([True] if meta.case_types else [])
    h.update(json.dumps(shape).encode())
    return h.hexdigest()[:16]


SHIPPED = "onnx"  # a model folder's own ONNX export, with the weights key it was made from
KEY_FILE = "weights.key"


def onnx_folder(model_dir: Path) -> Path:
    """The model's ONNX graphs: shipped inside the folder when they match its weights, else the export cache."""
    model_dir = Path(model_dir)
    key = weights_key(model_dir) if (model_dir / "model.safetensors").exists() else None
    shipped = model_dir / SHIPPED
    if (shipped / KEY_FILE).exists() and (key is None or (shipped / KEY_FILE).read_text().strip() == key):
        return shipped
    return models_home() / f"onnx-{model_dir.resolve().name}-{key}"


def _fp16_weights(path: Path) -> None:
    """Store an exported graph's large float weights as fp16, with a Cast to fp32 that ONNX Runtime folds at
    load: half the size on disk, fp32 arithmetic as trained."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, halves = [], []
    for init in list(graph.initializer):
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) > 1024:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "__fp16")
            halves.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
            graph.initializer.remove(init)
    graph.initializer.extend(halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.save(model, str(path))


def export(model_dir: Path, target: Path | None = None) -> Path:
    """Export the model folder's network as two ONNX graphs (once; needs torch)."""
    import warnings

    import torch

    from kiwi_cas.extractors.bert.artifacts import load_model

    target = target or onnx_folder(model_dir)
    if (target / ENCODER).exists() and (target / PAIRS).exists() and (target / KEY_FILE).exists():
        return target
    net, _, meta = load_model(model_dir)
    net.eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, ids, mask, case_types=None):
            hidden, ent, mod = self.net(ids, mask, case_types)
            return hidden, torch.log_softmax(ent, -1), torch.log_softmax(mod, -1)

    class Pairs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, entity_states, modifier_states, entity_index, modifier_index, between, pair_type, distance,
                    entities_between):
            return torch.sigmoid(self.net.pair_logits(entity_states, modifier_states, entity_index, modifier_index,
                                                      between, pair_type, distance, entities_between))

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    ids = torch.ones(2, 12, dtype=torch.long)
    size = net.encoder.config.hidden_size
    pair_inputs = (torch.zeros(2, 2 * size), torch.zeros(3, 2 * size), torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]),
                   torch.zeros(3, size), torch.tensor([0, 1, 2]), torch.tensor([3, 20, 0]), torch.tensor([0, 1, 0]))
    pair_names = ["entity_states", "modifier_states", "entity_index", "modifier_index", "between", "pair_type",
                  "distance", "entities_between"]
    seq = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        inputs = ["ids", "mask"] + (["case_types"] if meta.case_types else [])
        torch.onnx.export(Encoder(), (ids, torch.ones_like(ids)) + ((torch.zeros_like(ids),) if meta.case_types else ()),
                          str(tmp / ENCODER), input_names=inputs,
                          output_names=["hidden", "entity_log_probs", "modifier_log_probs"], opset_version=17,
                          dynamic_axes={**{name: seq for name in inputs}, "hidden": seq, "entity_log_probs": seq,
                                        "modifier_log_probs": seq}, dynamo=False)
        torch.onnx.export(Pairs(), pair_inputs, str(tmp / PAIRS), input_names=pair_names, output_names=["probs"],
                          opset_version=17, dynamic_axes={name: {0: {"entity_states": "entities", "modifier_states":
                                                                      "modifiers"}.get(name, "pairs")}
                                                          for name in pair_names + ["probs"]},
                          dynamo=False)
    for name in (ENCODER, PAIRS):
        _fp16_weights(tmp / name)
    for name in ("tokenizer.json", "tokenizer_config.json", META_FILE):
        shutil.copy(model_dir / name, tmp / name)
    (tmp / KEY_FILE).write_text(weights_key(model_dir) + "\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def graphs(model_dir: Path) -> Path:
    """The folder holding the model's ONNX graphs, exported first if there are none yet (needs torch then)."""
    folder = onnx_folder(Path(model_dir))
    if (folder / ENCODER).exists():
        return folder
    export(model_dir, folder)
    if folder.parent == models_home():  # the export cache, not the folder's own onnx/
        mark_cache_source(folder, Path(model_dir))
        remove_stale_caches(folder, Path(model_dir))
    return folder


def session(graph: Path, threads: int | None = None):
    """An ONNX Runtime CPU session on one graph: all graph optimizations, :func:`thread_count` threads,
    errors only in the log (a normal run prints nothing)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = thread_count(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


class OnnxRuntime:
    """Encoder and pair scorer in ONNX Runtime (CPU, fp32)."""

    def __init__(self, model_dir: Path, precision: str = "fp32", threads: int | None = None) -> None:
        # the model folder's meta, not the export's copy: its decoding rules may be retuned after an export;
        # a folder that is no kiwi_cas model fails here, by name
        self.meta = read_meta(model_dir)
        folder = graphs(model_dir)
        self.encoder = session(folder / ENCODER, threads)
        self.pairs = session(folder / PAIRS, threads)
        self.tokenizer = FastTokenizer(folder)

    def encode(self, ids: np.ndarray, mask: np.ndarray, case_types: np.ndarray | None = None) -> Encoded:
        feeds = {"ids": ids, "mask": mask} | ({} if case_types is None else {"case_types": case_types})
        hidden, ent, mod = self.encoder.run(None, feeds)
        return Encoded(ent, mod, hidden)

    def score_pairs(self, encoded: Encoded, pairs: np.ndarray) -> np.ndarray:
        return self.pairs.run(None, pair_feeds(encoded.state, pairs))[0]


def pair_feeds(h: np.ndarray, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """The pair graph's inputs for int64 ``pairs`` [P, 8] over hidden states ``h`` [batch, tokens, hidden]:
    gathers and between-span means in numpy (cheap indexing), each distinct span's boundary states once.
    Shared by every runtime that runs the exported pair graph."""
    b, es, ee, ms, me, pt, db, nb = pairs.T
    csum = np.concatenate([np.zeros_like(h[:, :1]), np.cumsum(h, axis=1, dtype=np.float32)], axis=1)
    lo = np.minimum(ee, me) + 1
    hi = np.maximum(np.maximum(es, ms), lo)
    count = np.maximum(hi - lo, 1)[:, None].astype(np.float32)
    between = (csum[b, hi] - csum[b, lo]) / count
    ents, ent_index = np.unique(np.stack([b, es, ee], 1), axis=0, return_inverse=True)
    mods, mod_index = np.unique(np.stack([b, ms, me], 1), axis=0, return_inverse=True)
    return {"entity_states": np.concatenate([h[ents[:, 0], ents[:, 1]], h[ents[:, 0], ents[:, 2]]], axis=-1),
            "modifier_states": np.concatenate([h[mods[:, 0], mods[:, 1]], h[mods[:, 0], mods[:, 2]]], axis=-1),
            "entity_index": ent_index.reshape(-1).astype(np.int64),
            "modifier_index": mod_index.reshape(-1).astype(np.int64),
            "between": between.astype(np.float32), "pair_type": pt, "distance": db, "entities_between": nb}
