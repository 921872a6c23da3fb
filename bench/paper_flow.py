"""The paper's flow (2D2H2L BNAF), reproduced as a baseline for measurements.

Trained as NFL trains it: 10 % samples drawn three times, Adam (lr 0.1,
amsgrad), gradient norm clipped at 0.1, batches of 4096, up to 15 epochs per
sample, stopping when an epoch's loss rises or improves by less than 1 %, the
best weights kept.  Its sum decoder is not monotone, so it cannot back an
index; z is compared after sorting, as the paper does.  Inference is numba.
"""
import time

import numpy as np
from numba import njit

from nfl.flow.flow import key_values
from nfl.flow.progress import Work
from nfl.flow.train import draw_sample, require_torch

SHIFTS = 1e6  # the authors' default scale of the normalized keys
ROUNDS = 3
BATCH = 4096
LEARNING_RATE = 0.1
CLIP_NORM = 0.1
MIN_GAIN = 0.01


@njit(cache=True)
def _transform(x, lo, width, w1, w2):
    z = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        xn = (x[i] - lo) / width
        f0 = np.floor(xn)
        f1 = xn - f0
        a0 = np.tanh(w1[0, 0] * f0 + w1[0, 1] * f1)
        a1 = np.tanh(w1[1, 0] * f0 + w1[1, 1] * f1)
        z[i] = (w2[0, 0] * a0 + w2[0, 1] * a1) + (w2[1, 0] * a0 + w2[1, 1] * a1)
    return z


class PaperFlow:
    """NFL's numerical normalizing flow: z = sum of the BNAF's latent vector."""

    def __init__(self, lo, width, w1, w2, meta=None):
        self.lo, self.width = float(lo), float(width)
        self.w1, self.w2 = np.asarray(w1, np.float64), np.asarray(w2, np.float64)
        self.meta = dict(meta or {})

    @classmethod
    def train(cls, keys, *, sample=0.1, epochs=15, seed=0, progress=True, shifts=SHIFTS):
        torch = require_torch()
        from .paper_bnaf import PaperBNAF

        start = time.perf_counter()
        x = key_values(keys)
        lo, hi = float(x.min()), float(x.max())
        width = (hi - lo) / shifts if hi > lo else 1.0
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        model = PaperBNAF(gen)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, amsgrad=True)
        best_loss, best_state = np.inf, {k: v.clone() for k, v in model.state_dict().items()}
        with Work("training paper flow", ROUNDS * epochs, progress) as work:
            for _ in range(ROUNDS):
                xn = torch.from_numpy((draw_sample(x, sample, rng) - lo) / width)
                last = None
                for epoch in range(epochs):
                    total = 0.0
                    for i in range(0, xn.numel(), BATCH):
                        loss = model.loss(xn[i:i + BATCH])
                        optimizer.zero_grad()
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
                        optimizer.step()
                        total += float(loss.detach())
                    work.step(f"loss {total:.4g}")
                    if total < best_loss:
                        best_loss, best_state = total, {k: v.clone() for k, v in model.state_dict().items()}
                    if last is not None and (total > last or abs(last - total) < MIN_GAIN * abs(last)):
                        work.step("next round", epochs - epoch - 1)
                        break
                    last = total
                model.load_state_dict(best_state)
        w1, w2 = model.weights()
        return cls(lo, width, w1, w2, {"shifts": shifts, "seconds": round(time.perf_counter() - start, 3)})

    def transform(self, keys) -> np.ndarray:
        """z for every key (not monotone in the key)."""
        return _transform(key_values(keys), self.lo, self.width, self.w1, self.w2)
