"""A linear-chain CRF over one BIO tag layer, for training (``train bert --crf``).

Without it, each token's tag is trained alone (cross-entropy) and decoding only forbids
invalid BIO steps. With it, training maximises the likelihood of the whole gold tag path
under learned tag-to-tag transition scores, and decoding adds those scores to the same
Viterbi. The learned scores are small (a start vector and a square matrix per layer), so
they are stored in ``kiwi_model.json`` and read by every runtime's decoding; the network
and its ONNX export are unchanged.

Its per-token posteriors (forward-backward, :func:`log_marginals`) are what distillation
(``train bert --teacher``, distill.py) reads from a teacher and matches in the student.
"""

from __future__ import annotations

import torch
from torch import nn

from kiwi_cas.extractors.bert.tagging import TagSet

# invalid BIO steps: a large finite penalty in training (−inf would give NaN gradients)
_FORBIDDEN = -1e4


class TagCRF(nn.Module):
    def __init__(self, tagset: TagSet) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(tagset.size, tagset.size))
        self.start = nn.Parameter(torch.zeros(tagset.size))
        start_mask, trans_mask = bio_scores(tagset, None)
        self.register_buffer("trans_mask", trans_mask)
        self.register_buffer("start_mask", start_mask)

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """Summed negative log-likelihood of the gold paths.

        ``emissions`` [B, T, K] tag scores; ``tags`` [B, T] gold tags, −100 where a position is
        not scored (head, [CLS]/[SEP], padding). The scored positions of a row are contiguous.
        """
        mask = tags != -100
        keep = mask.any(1)
        if not bool(keep.any()):
            return emissions.sum() * 0.0
        order, em, m = _pack(emissions[keep], mask[keep])
        tg = tags[keep].gather(1, order).clamp(min=0)
        start, trans = self.scores()
        rows = torch.arange(em.shape[0])
        gold = start[tg[:, 0]] + em[rows, 0, tg[:, 0]]
        for t in range(1, em.shape[1]):
            step = trans[tg[:, t - 1], tg[:, t]] + em[rows, t, tg[:, t]]
            gold = gold + torch.where(m[:, t], step, torch.zeros_like(step))
        return (torch.logsumexp(_alphas(em, m, start, trans)[-1], dim=1) - gold).sum()

    def scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(start [K], transitions [K, K]) with the BIO rules applied."""
        return self.start + self.start_mask, self.transitions + self.trans_mask

    def log_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Log posterior of each tag at each position (forward-backward), differentiable; see
        :func:`log_marginals`."""
        return log_marginals(emissions, mask, *self.scores())

    def export(self) -> dict[str, list]:
        """The learned scores as plain lists (``ModelMeta.crf``); the BIO rules are added at decoding."""
        return {"start": self.start.detach().tolist(), "transitions": self.transitions.detach().tolist()}


def bio_scores(tagset: TagSet, learned: dict | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, transitions) of a stored CRF (``ModelMeta.crf[layer]``; None: a model trained without
    one, whose decoding adds only the BIO rules), with the BIO rules as large finite penalties (the
masks :class:`TagCRF` trains under)."""
    start = torch.where(torch.from_numpy(tagset.start_scores()).isfinite(), 0.0, _FORBIDDEN)
    trans = torch.where(torch.from_numpy(tagset.transitions()).isfinite(), 0.0, _FORBIDDEN)
    if learned is not None:
        start = start + torch.tensor(learned["start"])
        trans = trans + torch.tensor(learned["transitions"])
    return start, trans


def log_marginals(emissions: torch.Tensor, mask: torch.Tensor, start: torch.Tensor,
                  trans: torch.Tensor) -> torch.Tensor:
    """Log posterior marginals [B, T, K] of a linear-chain CRF over the scored positions of each row
    (``mask`` [B, T], contiguous per row); rows' unscored positions hold zeros.

    What a CRF-trained model believes about each token is this posterior, not the softmax of its
    emission scores alone (its learned transitions carry part of the decision, e.g. that an
    entity's second token is I, not B), so this is what distillation matches.
    """
    out = torch.zeros_like(emissions)
    keep = mask.any(1)
    if not bool(keep.any()):
        return out
    order, em, m = _pack(emissions[keep], mask[keep])
    n = em.shape[1]
    alphas = _alphas(em, m, start, trans)
    betas = [torch.zeros_like(alphas[0])]
    for t in range(n - 2, -1, -1):
        nxt = torch.logsumexp(trans.unsqueeze(0) + (em[:, t + 1] + betas[0]).unsqueeze(1), dim=2)
        betas.insert(0, torch.where(m[:, t + 1].unsqueeze(1), nxt, torch.zeros_like(nxt)))
    log_z = torch.logsumexp(alphas[-1], dim=1)
    post = torch.stack(alphas, 1) + torch.stack(betas, 1) - log_z[:, None, None]
    post = torch.where(m.unsqueeze(-1), post, torch.zeros_like(post))
    back = torch.empty_like(post).scatter_(1, order.unsqueeze(-1).expand(-1, -1, post.shape[-1]), post)
    out[keep] = back
    return out


def _pack(emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each row's scored positions moved to its front, in order: (the gather order [B, T], the packed
    emissions [B, T, K], the packed mask [B, T]), so both recursions can step over one time axis."""
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
    em = emissions.gather(1, order.unsqueeze(-1).expand(-1, -1, emissions.shape[-1]))
    return order, em, mask.gather(1, order)


def _alphas(em: torch.Tensor, m: torch.Tensor, start: torch.Tensor, trans: torch.Tensor) -> list[torch.Tensor]:
    """The forward recursion over packed rows: log-sum of every path's score up to each position
    (a row's value is carried unchanged past its last scored position, so the last one is its log Z)."""
    alphas = [start + em[:, 0]]
    for t in range(1, em.shape[1]):
        nxt = torch.logsumexp(alphas[-1].unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
        alphas.append(torch.where(m[:, t].unsqueeze(1), nxt, alphas[-1]))
    return alphas
