"""Choosing K in a mixture of neural fields (:mod:`cryoscape.models.mixture`): ``-k`` is an upper
bound, and after every epoch trained with the exact posterior (epoch > ``anneal_epochs``; the maps
of the tempered epochs are still alike):

1. **Pruning.** A class whose proportion (its mean posterior over all particles) is below
   ``min_fraction`` (default 0.02) is pruned.
2. **Junk-like classes** (with a junk class). A spare class can learn a map that fits the noise of a
   few junk images (it memorizes them): its particles' evidence over junk, log p(image | k) −
   log p(image | junk), is then a few nats, where real classes have hundreds (measured on two species
   at D=24, SNR 1: 3 nats against 185 and 270). A class whose particles' median evidence is below
   ``junk_evidence`` (default 0.1) times the largest class median is pruned, its particles to junk.
3. **Merging.** For each pair of the classes left, the FSC between their maps (each at the median
   latent of its particles; the one map for zdim 0) is averaged over the Fourier shells 1 … R/2 (R the
   band limit in pixels); a pair at or above ``merge_fsc`` (default 0.9) is merged, the smaller class
   into the larger, most similar pair first, each class merged at most once per epoch.

A pruned class's posterior is given to the other components in proportion to theirs (the exact
posterior with its proportion set to 0); a merged class's posterior is added to the class it joins.
Its head is kept but no longer rendered, and its index is not reused. Every decision is logged.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import torch

from cryoscape.imaging.fsc import fsc

if TYPE_CHECKING:
    from cryoscape.models.mixture import MixtureOfFields

log = logging.getLogger("cryoscape")


def prune_and_merge(
    model: MixtureOfFields, epoch: int, prob: np.ndarray, evidence: np.ndarray, z: np.ndarray | None
) -> np.ndarray:
    """The posteriors ``prob`` (N, K + 1) after the epoch's decisions (float64; columns of pruned and
    merged classes 0); ``evidence`` (N, K) each class's log-likelihood over junk (nats); ``z`` (N, zdim)
    the particles' latents (None for zdim 0)."""
    prob = np.asarray(prob, dtype=np.float64).copy()
    s = model.settings
    if epoch <= s.anneal_epochs:
        return prob
    kept = model.kept_classes()
    share = prob.mean(0)
    for k in kept:
        if share[k] < s.min_fraction and len(model.kept_classes()) > 1:
            log.info(
                "epoch %d: pruned class %d: proportion %.4f < %.4f (%d particles assigned)",
                epoch,
                k,
                share[k],
                s.min_fraction,
                int((prob.argmax(1) == k).sum()),
            )
            prob[:, k] = 0.0
            model.proportions[k] = 0.0
    if s.junk:
        prob = _junk_like_to_junk(model, epoch, prob, evidence)
    total = prob.sum(1, keepdims=True)
    prob = np.divide(prob, total, out=np.full_like(prob, 1.0 / prob.shape[1]), where=total > 0)
    kept = model.kept_classes()
    if len(kept) < 2:
        return prob
    similarity = class_similarity(model, kept, prob, z)
    merged: set[int] = set()
    for a, b, value in sorted(similarity, key=lambda t: -t[2]):
        if value < s.merge_fsc or a in merged or b in merged:
            continue
        big, small = (a, b) if prob[:, a].sum() >= prob[:, b].sum() else (b, a)
        log.info(
            "epoch %d: merged class %d into class %d: FSC of their maps %.3f >= %.3f (mean to half the band limit)",
            epoch,
            small,
            big,
            value,
            s.merge_fsc,
        )
        prob[:, big] += prob[:, small]
        prob[:, small] = 0.0
        model.proportions[small] = 0.0
        merged |= {a, b}
    return prob


def _junk_like_to_junk(model: MixtureOfFields, epoch: int, prob: np.ndarray, evidence: np.ndarray) -> np.ndarray:
    """Rule 2 of the module docstring: the posterior of junk-like classes moved to the junk column."""
    labels = prob.argmax(1)
    medians = {k: float(np.median(evidence[labels == k, k])) for k in model.kept_classes() if (labels == k).any()}
    if not medians:
        return prob
    strongest = max(medians.values())
    for k, median in medians.items():
        if median < model.settings.junk_evidence * strongest and len(model.kept_classes()) > 1:
            log.info(
                "epoch %d: pruned class %d as junk-like: its %d particles' median evidence over junk is %.1f nats, "
                "< %.2f x %.1f (the strongest class's); its particles go to junk",
                epoch,
                k,
                int((labels == k).sum()),
                median,
                model.settings.junk_evidence,
                strongest,
            )
            prob[:, -1] += prob[:, k]
            prob[:, k] = 0.0
            model.proportions[k] = 0.0
    return prob


@torch.no_grad()
def class_maps(model: MixtureOfFields, classes: list[int], prob: np.ndarray, z: np.ndarray | None) -> list[np.ndarray]:
    """The (D, D, D) map of each class in ``classes`` at the median latent of its particles (those whose
    most probable component it is; the latent 0 if none), normalized units."""
    labels = prob.argmax(1)
    maps = []
    device = model.proportions.device
    for k in classes:
        latent = None
        if z is not None:
            mine = z[labels == k]
            median = np.median(mine, axis=0) if len(mine) else np.zeros(z.shape[1])
            latent = torch.as_tensor(median, dtype=torch.float32, device=device)[None]
        maps.append(model.head(k).volumes(latent)[0].cpu().numpy())
    return maps


def class_similarity(
    model: MixtureOfFields, classes: list[int], prob: np.ndarray, z: np.ndarray | None
) -> list[tuple[int, int, float]]:
    """(a, b, FSC of their maps averaged over shells 1 … R/2) for each pair of ``classes``."""
    maps = class_maps(model, classes, prob, z)
    top = max(2, model.radius // 2)
    pairs = []
    for i, a in enumerate(classes):
        for j in range(i + 1, len(classes)):
            curve = fsc(maps[i], maps[j])
            pairs.append((a, classes[j], float(np.mean(curve.fsc[1 : top + 1]))))
    return pairs


@torch.no_grad()
def balanced_responsibilities(logits: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    """Responsibilities (B, C) from ``logits`` (B, C) (log π + β log-likelihood, junk last, −inf for
    removed classes) with the junk column 0 and each remaining class holding an equal share of the
    batch: Sinkhorn iterations in the log domain alternate the class totals (B/K' each) and the
    image totals (1 each), ending with the images'."""
    scores = logits[:, :-1].float()
    valid = torch.isfinite(scores[0])
    log_q = torch.where(valid, scores, torch.full_like(scores, -torch.inf))
    B, n = scores.shape[0], int(valid.sum())
    target = torch.log(torch.tensor(B / max(n, 1), device=scores.device))
    for _ in range(iterations):
        column = torch.logsumexp(log_q, dim=0, keepdim=True)
        log_q = torch.where(valid, log_q - column + target, log_q)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True)
    return torch.cat([log_q.exp(), torch.zeros_like(log_q[:, :1])], dim=1)
