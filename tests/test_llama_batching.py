"""Parts of the drafting decoder's batching, each against what it replaces."""

from __future__ import annotations

from kiwi_cas.extractors.llama.drafting import Row, similar_lengths


def _tiny_gqa_llama():
    """A seeded, randomly initialised 2-layer Llama whose key/value heads are shared by 3 query heads each."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2)
    return LlamaForCausalLM(config).eval()


def test_prefill_runs_pad_at_most_a_fifth_of_their_positions():
    lengths = [64, 60, 58, 40, 39, 30, 12, 11, 11, 10]
    rows = [Row(prompt=[0] * (3 + n), follower=None, limit=1) for n in lengths]  # after a 3-token shared prefix
    runs = similar_lengths(rows, shared=3)
    assert [r for run in runs for r in run] == rows  # every row once, in order
    assert [len(run) for run in runs] == [5, 1, 4]
    for run in runs:
        widths = [len(r.prompt) - 3 for r in run]
        assert sum(widths) >= 0.8 * widths[0] * len(widths)


def test_gqa_attention_equals_transformers_sdpa_with_holes_in_the_mask():
    """The decoder's attention reads shared key/value heads in place; it must compute what
    transformers' own ``sdpa`` computes (which copies them per query head), holes and padding included."""
    import torch
    from transformers import DynamicCache

    from kiwi_cas.extractors.llama.attention import use_gqa_sdpa
    from kiwi_cas.extractors.llama.drafting import cache_keyword

    model = _tiny_gqa_llama()
    ids = torch.randint(0, 300, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, 7:] = 0  # right padding
    mask[1, 3] = 0  # a hole (a rejected guess)
    step = torch.randint(0, 300, (3, 4))
    step_mask = torch.cat([mask, torch.ones(3, 4, dtype=torch.long)], 1)
    positions = torch.arange(9)[None].expand(3, -1)

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        cache = {cache_keyword(model): DynamicCache()}
        with torch.inference_mode():
            first = model(ids, attention_mask=mask, position_ids=positions, **cache).logits
            then = model(step, attention_mask=step_mask, position_ids=9 + torch.arange(4)[None].expand(3, -1),
                         **cache).logits
        return first, then

    model.set_attn_implementation("sdpa")
    want = run()
    assert use_gqa_sdpa(model)
    got = run()
    for w, g in zip(want, got):
        real = mask.bool() if w.shape[1] == 9 else torch.ones(3, 4, dtype=torch.bool)
        assert torch.allclose(w[real], g[real], atol=1e-5)


def test_appending_cache_layer_holds_what_concatenation_holds():
    """The decoder's cache writes new positions into spare room; through reallocations and rows
    leaving, each layer must hold exactly the concatenation transformers' own layer would."""
    import torch
    from transformers import DynamicCache

    from kiwi_cas.extractors.llama.kv_cache import layer_tensors, new_cache

    torch.manual_seed(0)
    first = [(torch.randn(3, 2, 7, 4), torch.randn(3, 2, 7, 4)) for _ in range(2)]
    ours, theirs = new_cache(first), DynamicCache()
    for layer, (k, v) in enumerate(first):
        theirs.update(k, v, layer)
    for i in range(40):  # 200 positions: more than the spare room, several times
        width = 1 + i % 5
        if i == 25:  # a row leaves
            index = torch.tensor([0, 2])
            ours.batch_select_indices(index)
            theirs.batch_select_indices(index)
        rows = 3 if i < 25 else 2
        for layer in range(2):
            k, v = torch.randn(rows, 2, width, 4), torch.randn(rows, 2, width, 4)
            got = ours.update(k, v, layer)
            want = theirs.update(k, v, layer)
            assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert ours.get_seq_length() == theirs.get_seq_length() == 7 + sum(1 + i % 5 for i in range(40))
    assert all(torch.equal(a, b) for pa, pb in zip(layer_tensors(ours), layer_tensors(theirs)) for a, b in zip(pa, pb))


def test_batch_operations_build_the_caches_plain_tensor_operations_build():
    """Repeating the shared prefix, joining two batches (the shorter widened with zero holes),
    dropping positions and rows: each builds its buffers once, with spare room, and must hold
    what plain tensor operations give, and keep holding it as positions are appended."""
    import torch

    from kiwi_cas.extractors.llama.kv_cache import ROOM, joined, kept_positions, layer_tensors, repeated

    torch.manual_seed(0)

    def both(cache):
        return [t.clone() for pair in layer_tensors(cache) for t in pair]

    def appended(cache, want: list[torch.Tensor], width: int) -> list[torch.Tensor]:
        """Append ``width`` random positions to every layer of ``cache`` and to ``want`` alike."""
        out = []
        for layer in range(len(want) // 2):
            k, v = (torch.randn(want[2 * layer].shape[0], 2, width, 4) for _ in range(2))
            got = cache.update(k, v, layer)
            out += [torch.cat([want[2 * layer], k], 2), torch.cat([want[2 * layer + 1], v], 2)]
            assert all(torch.equal(g, w) for g, w in zip(got, out[-2:]))
        return out

    prefix = [(torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4)) for _ in range(2)]
    a = repeated(prefix, 3, extra=9)
    want_a = [t.expand(3, -1, -1, -1) for pair in prefix for t in pair]
    assert all(torch.equal(g, w) for g, w in zip(both(a), want_a))
    want_a = appended(a, want_a, 9)  # the prompt suffix fits the room made for it
    assert all(layer._keys.shape[2] == 6 + 9 + ROOM for layer in a.layers)
    b = repeated(prefix, 2, extra=4)
    want_b = appended(b, [t.expand(2, -1, -1, -1) for pair in prefix for t in pair], 4)

    width = 15
    ab = joined(a, b, width)
    hole = torch.zeros(2, 2, width - 10, 4)
    want = [torch.cat([wa, torch.cat([wb, hole], 2)]) for wa, wb in zip(want_a, want_b)]
    assert all(torch.equal(g, w) for g, w in zip(both(ab), want))
    for step in range(3 * ROOM):  # past the room, several times
        want = appended(ab, want, 1 + step % 5)

    keep = torch.tensor([0, 2, 4])
    ab.batch_select_indices(keep)
    want = [w.index_select(0, keep) for w in want]
    assert all(torch.equal(g, w) for g, w in zip(both(ab), want))
    want = appended(ab, want, 3)

    positions = torch.tensor([0, 1, 5, 9, 10, 40, want[0].shape[2] - 1])
    kept = kept_positions(ab, positions)
    want = [w.index_select(2, positions) for w in want]
    assert all(torch.equal(g, w) for g, w in zip(both(kept), want))
    for step in range(ROOM + 3):
        want = appended(kept, want, 2)
    assert kept.get_seq_length() == len(positions) + 2 * (ROOM + 3)


def test_mlps_on_real_positions_compute_what_padded_mlps_compute():
    """With ``skip_padding`` the MLPs run on the real positions only; every real position's hidden
    state and cached keys/values must be what the padded computation gives, prompt pass and step alike."""
    import copy

    import torch
    from transformers import DynamicCache

    from kiwi_cas.extractors.llama.drafting import cache_keyword
    from kiwi_cas.extractors.llama.kv_cache import layer_tensors
    from kiwi_cas.extractors.llama.padding import OnRealPositions, skip_padding

    plain = _tiny_gqa_llama()
    skipping = copy.deepcopy(plain)
    real = skip_padding(skipping)
    assert all(isinstance(layer.mlp, OnRealPositions) for layer in skipping.model.layers)
    ids = torch.randint(0, 300, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, 6:] = 0
    mask[2, 4:] = 0  # right padding
    step = torch.randint(0, 300, (3, 5))
    step_mask = torch.zeros(3, 5, dtype=torch.long)
    step_mask[0, :1] = step_mask[1, :5] = step_mask[2, :3] = 1  # rows fed 1, 5 and 3 positions
    full_mask = torch.cat([mask, step_mask], 1)
    positions = torch.arange(9)[None].expand(3, -1)

    def run(model, gate) -> tuple[list[torch.Tensor], DynamicCache]:
        cache = DynamicCache()
        keyword = {cache_keyword(model.model): cache}
        outs = []
        with torch.inference_mode():
            for x, m, p, fed in ((ids, mask, positions, mask), (step, full_mask, 9 + torch.arange(5)[None].expand(3, -1),
                                                               step_mask)):
                with gate(fed):
                    outs.append(model.model(input_ids=x, attention_mask=m, position_ids=p, use_cache=True,
                                            **keyword).last_hidden_state)
        return outs, cache

    from contextlib import nullcontext

    want, want_cache = run(plain, lambda fed: nullcontext())
    got, got_cache = run(skipping, real.only)
    assert real.index is None  # nothing left switched on after the pass
    for w, g, fed in zip(want, got, (mask, step_mask)):
        assert torch.allclose(w[fed.bool()], g[fed.bool()], atol=1e-5)
    attended = full_mask.bool()
    for (wk, wv), (gk, gv) in zip(layer_tensors(want_cache), layer_tensors(got_cache)):
        for w, g in ((wk, gk), (wv, gv)):
            assert torch.allclose(w.transpose(1, 2)[attended], g.transpose(1, 2)[attended], atol=1e-5)
            assert torch.isfinite(g).all()  # padding is masked out, and must not carry NaN into attention
