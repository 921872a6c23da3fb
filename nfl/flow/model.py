"""Torch module of the spline flow (float64): the density that training maximizes.

A monotone linear spline on [0, 1] with fixed knots and learned bin masses
(through exp, so they stay positive): the CDF of a piecewise-constant
density.  It is the function native/flow.c evaluates; here it is written for
gradients, there for exact monotonicity.
"""
import numpy as np
import torch


class LinearSpline(torch.nn.Module):
    """u -> P(u) on [0, 1], and log P'(u)."""

    def __init__(self, knots: np.ndarray, masses: np.ndarray):
        super().__init__()
        self.register_buffer("knots", torch.as_tensor(knots, dtype=torch.float64))
        self.register_buffer("width", self.knots[1:] - self.knots[:-1])
        self.log_mass = torch.nn.Parameter(torch.log(torch.as_tensor(masses, dtype=torch.float64)))

    def bins_of(self, u: torch.Tensor) -> torch.Tensor:
        """The bin of each u: the largest j with knots[j] <= u (the knots are fixed)."""
        return (torch.searchsorted(self.knots, u.detach(), right=True) - 1).clamp_(0, self.width.numel() - 1)

    def forward(self, u: torch.Tensor, j: torch.Tensor):
        """(P(u), log P'(u)) for u in bins j."""
        p = torch.exp(self.log_mass)
        p = p / p.sum()
        y = torch.cat([p.new_zeros(1), torch.cumsum(p, 0)])
        slope = p[j] / self.width[j]
        return y[j] + (u - self.knots[j]) * slope, torch.log(slope)

    def masses(self) -> np.ndarray:
        return torch.exp(self.log_mass).detach().numpy().copy()
