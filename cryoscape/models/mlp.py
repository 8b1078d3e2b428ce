"""Residual multilayer perceptrons: the "d × l" networks of cryoDRGN (thesis §2.3).

``ResidualMLP(in_dim, width=d, depth=l, out_dim)`` is Linear(in→d) (a residual layer when in = d),
then l residual layers y = act(W x + b + x), then Linear(d→out) (residual when out = d), with the
activation after every layer but the last. A 3×256 decoder on a 384-wide input with one output
has 296,193 parameters, as the thesis states.
"""

from __future__ import annotations

import torch
from torch import nn

from cryoscape.errors import InputError

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class ResidualLinear(nn.Module):
    """y = W x + b + x (same input and output width)."""

    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + x


class ResidualMLP(nn.Module):
    """in_dim -> [width] × (depth + 1 layers) -> out_dim, residual where widths match.

    With ``cond_dim`` > 0 the first layer also takes a conditioning vector c shared by all points
    of an item: h = act(W x + b + U c). This equals a first layer on the concatenation [x, c] (same
    parameter count) but computes U c once per item, not once per point, and no gradient flows
    into the per-point features x.
    """

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int, activation: str = "relu", cond_dim: int = 0):
        super().__init__()
        if min(in_dim, width, out_dim) < 1 or depth < 0 or cond_dim < 0:
            raise InputError(
                f"invalid MLP shape: in {in_dim} (+{cond_dim}), width {width}, depth {depth}, out {out_dim}"
            )
        if activation not in ACTIVATIONS:
            raise InputError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        act = ACTIVATIONS[activation]
        self.first = ResidualLinear(width) if in_dim == width and not cond_dim else nn.Linear(in_dim, width)
        self.cond = nn.Linear(cond_dim, width, bias=False) if cond_dim else None
        layers: list[nn.Module] = [act()]
        for _ in range(depth):
            layers += [ResidualLinear(width), act()]
        layers.append(ResidualLinear(width) if out_dim == width else nn.Linear(width, out_dim))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, ..., in_dim), ``cond`` (B, cond_dim) when the network has one -> (B, ..., out_dim)."""
        h = self.first(x)
        if self.cond is not None:
            c = self.cond(cond)
            h = h + c.reshape(c.shape[:1] + (1,) * (h.ndim - 2) + c.shape[1:])
        return self.body(h)
