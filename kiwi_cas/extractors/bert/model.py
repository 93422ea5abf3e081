"""The network: a BERT encoder, two BIO tagging heads and a pairwise relation scorer.

Kiwi's BiomedBERT encodes the sentence once per entity to find that entity's modifiers.
Here the sentence is encoded once; every allowed (entity, modifier) pair is scored from
that same pass, from the two spans' boundary states, the mean state between them, the
pair type, their distance and how many entities lie between them. The cost of relations
is then a small MLP per pair instead of an encoder pass per entity.
"""

from __future__ import annotations

import torch
from torch import nn

from kiwi_cas.extractors.bert.segments import N_BETWEEN_BUCKETS, N_DIST_BUCKETS, PAIR_TYPES


class KiwiBertNet(nn.Module):
    def __init__(self, encoder: nn.Module, n_ent_tags: int, n_mod_tags: int, rel_dim: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.ent_head = nn.Linear(hidden, n_ent_tags)
        self.mod_head = nn.Linear(hidden, n_mod_tags)
        self.ent_proj = nn.Linear(2 * hidden, rel_dim)
        self.mod_proj = nn.Linear(2 * hidden, rel_dim)
        self.ctx_proj = nn.Linear(hidden, rel_dim)
        self.pair_emb = nn.Embedding(len(PAIR_TYPES), 32)
        self.dist_emb = nn.Embedding(N_DIST_BUCKETS, 32)
        self.between_emb = nn.Embedding(N_BETWEEN_BUCKETS, 16)
        self.rel_mlp = nn.Sequential(
            nn.Linear(4 * rel_dim + 32 + 32 + 16, rel_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(rel_dim, 1)
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, case_types: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``case_types``: each token's letter-case class as its token type (a ``--case-types`` model), else None."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              **({} if case_types is None else {"token_type_ids": case_types})).last_hidden_state
        h = self.dropout(hidden)
        return hidden, self.ent_head(h), self.mod_head(h)

    def score_pairs(self, hidden: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
        """Relation logits for pairs.

        ``pairs``: long tensor [P, 8] = (batch row, entity first tok, entity last tok,
        modifier first tok, modifier last tok, pair type, distance bucket, between bucket).
        """
        if pairs.numel() == 0:
            return hidden.new_zeros(0)
        b, es, ee, ms, me, pt, db, nb = pairs.unbind(1)
        h = self.dropout(hidden)
        # mean hidden state strictly between the two spans, via prefix sums
        csum = torch.cumsum(h, dim=1)
        csum = torch.cat([torch.zeros_like(csum[:, :1]), csum], dim=1)  # csum[:, i] = sum of h[:, :i]
        lo = torch.minimum(ee, me) + 1
        hi = torch.maximum(es, ms)
        hi = torch.maximum(hi, lo)
        count = (hi - lo).clamp(min=1).unsqueeze(-1).to(h.dtype)
        between = (csum[b, hi] - csum[b, lo]) / count
        rows = torch.arange(len(b))
        return self.pair_logits(torch.cat([h[b, es], h[b, ee]], dim=-1), torch.cat([h[b, ms], h[b, me]], dim=-1),
                                rows, rows, between, pt, db, nb)

    def pair_logits(self, entity_states: torch.Tensor, modifier_states: torch.Tensor, entity_index: torch.Tensor,
                    modifier_index: torch.Tensor, between: torch.Tensor, pair_type: torch.Tensor,
                    distance: torch.Tensor, entities_between: torch.Tensor) -> torch.Tensor:
        """The learned part of relation scoring, on gathered boundary states: one row per distinct span
        (a runtime may project each span once however many pairs it is in), ``*_index`` mapping pairs to rows."""
        e_rep = self.ent_proj(entity_states)[entity_index]
        m_rep = self.mod_proj(modifier_states)[modifier_index]
        ctx = self.ctx_proj(between)
        feats = torch.cat([e_rep, m_rep, e_rep * m_rep, ctx, self.pair_emb(pair_type), self.dist_emb(distance),
                           self.between_emb(entities_between)], dim=-1)
        return self.rel_mlp(feats).squeeze(-1)
