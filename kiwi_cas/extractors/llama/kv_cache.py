"""The drafting decoder's KV cache: transformers' cache, with layers that append in place.

transformers' ``DynamicLayer`` concatenates each layer's whole cache with the new keys and
values at every forward pass: with 32 rows of a few hundred positions that is ~20 ms of copying
per pass on a 2-core CPU, a fifth of the decoding time. ``AppendingLayer`` keeps spare room at
the end of its buffers and writes new positions there; it copies only when the room runs out
or rows leave the batch. The batch operations below (a prompt batch from the shared prefix,
joining two batches, dropping positions) build each layer's new buffer once, room included,
and hand it to the layer as it is: each had cost two or three whole-cache copies, every one
into freshly allocated memory. It serves ``DraftDecoder`` only: the cache operations it does
not override (crop, beam reordering) are not used there.
"""

from __future__ import annotations

import torch

try:  # transformers >= 5: caches are lists of layer objects
    from transformers import Cache
    from transformers.cache_utils import DynamicLayer
except ImportError:  # transformers 4.x: no layer classes; its DynamicCache concatenates
    DynamicLayer = None

#: positions of spare room per (re)allocation; a drafting step adds at most 5 per row. On 4 dev notes,
#: 8 / 16 / 32 / 64 / 256 gave 19.7-20.0 / 19.2-19.3 / 18.7-19.3 / 19.0-20.3 / 21.1-21.2 s
ROOM = 32

Tensors = list[tuple[torch.Tensor, torch.Tensor]]


def _buffers(keys: torch.Tensor, values: torch.Tensor, rows: int, room: int) -> tuple[torch.Tensor, torch.Tensor]:
    """New buffers of ``rows`` rows holding ``keys``/``values`` (broadcast along rows), then ``room`` spare positions."""
    shape = (rows, keys.shape[1], keys.shape[2] + room, keys.shape[3])
    new_keys, new_values = keys.new_empty(shape), values.new_empty(shape)
    new_keys[:, :, :keys.shape[2]] = keys
    new_values[:, :, :values.shape[2]] = values
    return new_keys, new_values


if DynamicLayer is not None:
    class AppendingLayer(DynamicLayer):
        """A ``DynamicLayer`` whose ``keys``/``values`` are views of larger buffers, filled in place."""

        def adopt(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
            """Take ``keys``/``values`` as the buffers, uncopied: their first ``length`` positions are the cache."""
            if not self.is_initialized:
                self.lazy_initialization(keys, values)
            self._keys, self._values, self._length = keys, values, length
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]

        def _place(self, keys: torch.Tensor, values: torch.Tensor, extra: int = 0) -> None:
            """New buffers holding ``keys``/``values``, with room for ``extra`` positions and then some."""
            self.adopt(*_buffers(keys, values, keys.shape[0], extra + ROOM), keys.shape[2])

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
                   ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
                self._place(key_states, value_states)
                return self.keys, self.values
            end = self._length + key_states.shape[-2]
            if end > self._keys.shape[-2]:
                self._place(self.keys, self.values, extra=key_states.shape[-2])
            self._keys[:, :, self._length:end] = key_states
            self._values[:, :, self._length:end] = value_states
            self.adopt(self._keys, self._values, end)
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            """Keep the rows ``indices``: one gather of the whole buffers, spare room and all."""
            if self.get_seq_length() > 0:
                self.adopt(self._keys.index_select(0, indices), self._values.index_select(0, indices), self._length)


def _cache_of(buffers: Tensors, length: int):
    """A cache whose layers hold the first ``length`` positions of ``buffers`` (the rest: spare room)."""
    if DynamicLayer is None:
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer, (keys, values) in enumerate(buffers):
            cache.update(keys[:, :, :length], values[:, :, :length], layer)
        return cache
    cache = Cache(layer_class_to_replicate=AppendingLayer)
    for keys, values in buffers:
        cache.layers.append(AppendingLayer())
        cache.layers[-1].adopt(keys, values, length)
    return cache


def new_cache(tensors: Tensors):
    """A cache holding each layer's (keys, values) given, ready to be appended to."""
    return _cache_of([_buffers(k, v, k.shape[0], ROOM) for k, v in tensors], tensors[0][0].shape[2] if tensors else 0)


def repeated(prefix: Tensors, rows: int, extra: int):
    """A cache of ``rows`` rows, each holding the one-row ``prefix``, with room for ``extra`` positions."""
    return _cache_of([_buffers(k, v, rows, extra + ROOM) for k, v in prefix], prefix[0][0].shape[2] if prefix else 0)


def joined(a, b, width: int):
    """One cache of ``a``'s rows then ``b``'s, each widened to ``width`` positions with zeros (the
    masked holes of a joined batch: zeros, not whatever memory held, since a NaN there would
    reach the attention output even with a zero weight)."""
    buffers = []
    for (ka, va), (kb, vb) in zip(layer_tensors(a), layer_tensors(b)):
        rows = ka.shape[0] + kb.shape[0]
        shape = (rows, ka.shape[1], width + ROOM, ka.shape[3])
        buffers.append((ka.new_empty(shape), va.new_empty(shape)))
        for buffer, top, bottom in zip(buffers[-1], (ka, va), (kb, vb)):
            for part, t in ((buffer[:top.shape[0]], top), (buffer[top.shape[0]:], bottom)):
                part[:, :, :t.shape[2]] = t
                part[:, :, t.shape[2]:width] = 0
    return _cache_of(buffers, width)


def kept_positions(cache, index: torch.Tensor):
    """The cache with only the positions ``index``: one gather per buffer, its tail (the first position
    again) serving as spare room."""
    gather = torch.cat([index, index[:1].expand(ROOM)])
    return _cache_of([(k.index_select(2, gather), v.index_select(2, gather)) for k, v in layer_tensors(cache)],
                     len(index))


def layer_tensors(cache) -> Tensors:
    """Each layer's (keys, values): ``layers`` in transformers 5, two lists in 4.x."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))
