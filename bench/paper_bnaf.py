"""Torch modules of the paper's flow: 2D2H2L block neural autoregressive flow (BNAF).

NFL's numerical normalizing flow: min-max normalization to [0, shifts], a
partition encoder into [integer part, fractional part], two masked layers
whose weight matrices are block lower triangular with positive entries
(weight-normalized, diagonal blocks carry the Jacobian) and a tanh between
them, no bias, and a sum decoder.  With two dimensions and one hidden unit
per dimension every block is 1x1, so the log-determinant is a plain sum.
"""
import math

import torch


class MaskedWeight(torch.nn.Module):
    """A 2x2 lower-triangular linear map with positive entries, weight-normalized by row."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        bound = math.sqrt(6.0 / 2.0)  # xavier uniform for a 1x2 row block
        self.weight = torch.nn.Parameter((torch.rand(2, 2, generator=generator, dtype=torch.float64) * 2 - 1) * bound)
        self.log_scale = torch.nn.Parameter(torch.log(torch.rand(2, generator=generator, dtype=torch.float64)))
        self.register_buffer("mask", torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=torch.float64))

    def matrix(self):
        """(W, log of its diagonal)."""
        w = torch.exp(self.weight) * self.mask
        norm2 = (w**2).sum(1)
        scaled = torch.exp(self.log_scale)[:, None] * w / norm2.sqrt()[:, None]
        log_diag = self.log_scale + torch.diagonal(self.weight) - 0.5 * torch.log(norm2)
        return scaled, log_diag

    def forward(self, h):
        w, log_diag = self.matrix()
        return h @ w.T, log_diag


class PaperBNAF(torch.nn.Module):
    """Features [floor(x), x - floor(x)] -> latent 2-vector and log |det J|."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.first = MaskedWeight(generator)
        self.second = MaskedWeight(generator)

    def forward(self, x_norm):
        whole = torch.floor(x_norm)
        f = torch.stack([whole, x_norm - whole], 1)
        h, log_d1 = self.first(f)
        a = torch.tanh(h)
        log_tanh = -2.0 * (h - math.log(2.0) + torch.nn.functional.softplus(-2.0 * h))
        out, log_d2 = self.second(a)
        return out, (log_d1 + log_tanh + log_d2).sum(1)

    def loss(self, x_norm):
        """Negative log-likelihood under the paper's standard normal latent."""
        out, log_det = self(x_norm)
        log_p = -0.5 * (out**2).sum(1) - math.log(2.0 * math.pi)
        return -(log_p + log_det).mean()

    def weights(self):
        """The two effective 2x2 matrices, as numpy arrays."""
        with torch.no_grad():
            return self.first.matrix()[0].numpy().copy(), self.second.matrix()[0].numpy().copy()
