"""The drafting decoder's KV cache: transformers' cache, with layers that append in place.

transformers' ``DynamicLayer`` concatenates each layer's whole cache with the new keys and
values at every forward pass: with 32 rows of a few hundred positions that is ~20 ms of copying
per pass on a 2-core CPU, a fifth of the decoding time. ``AppendingLayer`` keeps spare room at
the end of its buffers and writes new positions there; it copies only when the room runs out
or rows leave the batch. It serves ``DraftDecoder`` only: the cache operations it does not
override (crop, beam reordering) are not used there.
"""

from __future__ import annotations

import torch

try:  # transformers >= 5: caches are lists of layer objects
    from transformers import Cache
    from transformers.cache_utils import DynamicLayer
except ImportError:  # transformers 4.x: no layer classes; its DynamicCache concatenates
    DynamicLayer = None


if DynamicLayer is not None:
    class AppendingLayer(DynamicLayer):
        """A ``DynamicLayer`` whose ``keys``/``values`` are views of larger buffers, filled in place."""

        room = 32  # positions of spare room per (re)allocation; a drafting step adds at most 5 per row. On 4 dev
        # notes, 8 / 16 / 32 / 64 / 256 gave 19.7-20.0 / 19.2-19.3 / 18.7-19.3 / 19.0-20.3 / 21.1-21.2 s

        def _place(self, keys: torch.Tensor, values: torch.Tensor, extra: int = 0) -> None:
            """New buffers holding ``keys``/``values``, with room for ``extra`` positions and then some."""
            length = keys.shape[-2]
            shape = (*keys.shape[:2], length + extra + self.room, keys.shape[-1])
            self._keys, self._values = keys.new_empty(shape), values.new_empty(shape)
            self._keys[:, :, :length] = keys
            self._values[:, :, :length] = values
            self._length = length
            self._expose()

        def _expose(self) -> None:
            self.keys, self.values = self._keys[:, :, :self._length], self._values[:, :, :self._length]

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
            self._length = end
            self._expose()
            return self.keys, self.values

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.get_seq_length() > 0:
                self._place(self.keys.index_select(0, indices), self.values.index_select(0, indices))


def new_cache(tensors: list[tuple[torch.Tensor, torch.Tensor]]):
    """A cache holding each layer's (keys, values) given, ready to be appended to."""
    if DynamicLayer is None:
        from transformers import DynamicCache

        cache = DynamicCache()
    else:
        cache = Cache(layer_class_to_replicate=AppendingLayer)
    for layer, (keys, values) in enumerate(tensors):
        cache.update(keys, values, layer)
    return cache


def layer_tensors(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values): ``layers`` in transformers 5, two lists in 4.x."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))
