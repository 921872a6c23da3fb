"""Flow: a trained numerical normalizing flow, as the index and users see it.

It holds the flat parameter vector and its compiled transform
(nfl.flow.compiled: native/flow.c), the single implementation the index
builds and probes with.  Training imports torch; nothing else here does.
"""
import os  # noqa: F401  (annotations)

import numpy as np

from nfl.flow import layout, weights
from nfl.flow.compiled import Compiled

FAMILIES = ("spline",)
DEFAULT_FAMILY = "spline"
# Fraction of the keys a flow trains on by default: the paper's 10 % (the API's contract).  Real
# keys hold bursts of a few keys that a 10 % sample does not see; sample=0.3 resolves them at
# three times the training time (bench/flow_report.py).
DEFAULT_SAMPLE = 0.1
_KEY_KINDS = "uif"  # uint64, int64, float64: 8-byte items of these kinds


def key_values(keys) -> np.ndarray:
    """The keys' numeric values as native float64, the x the flow reads."""
    keys = np.asarray(keys)
    if keys.ndim != 1 or keys.dtype.itemsize != 8 or keys.dtype.kind not in _KEY_KINDS:
        raise TypeError(f"keys must be a 1-D uint64, int64 or float64 array; got {keys.dtype} with shape {keys.shape}")
    return np.ascontiguousarray(keys, dtype=np.float64)


class Flow:
    """A monotone transform z = f(key) into [0, 1] that makes keys near-uniform.

    ``Flow.train(keys)`` fits one (needs torch), ``save``/``load`` move it
    through a weights file, ``transform`` runs the compiled C inference.
    Picklable; immutable once built.

    >>> import numpy as np
    >>> from nfl import Flow
    >>> keys = np.unique((np.random.default_rng(0).lognormal(0, 2, 30_000) * 1e9).astype(np.uint64))
    >>> flow = Flow.train(keys, progress=False)
    >>> z = flow.transform(keys)
    >>> bool((np.diff(z) >= 0).all()), bool(0 <= z.min() <= z.max() <= 1)
    (True, True)
    """

    def __init__(self, params: np.ndarray, meta: "dict | None" = None) -> None:
        """A flow from its flat parameter vector (nfl.flow.layout) and free-form metadata.

        Raises ValueError if the vector is malformed or non-finite.  Users get
        flows from Flow.train or Flow.load; this is their common end.  Cost:
        O(p) for p parameters (checked, copied and compiled into the C
        transform's tables).
        """
        self._params = layout.check(params).copy()
        self._params.flags.writeable = False
        self.meta = dict(meta or {})
        self.compiled = Compiled(self._params)

    @classmethod
    def train(cls, keys: np.ndarray, *, sample: float = DEFAULT_SAMPLE, epochs: int = 15, seed: int = 0,
              progress: bool = True, family: str = DEFAULT_FAMILY) -> "Flow":
        """Fits a flow to keys by maximum likelihood on a random sample of them.

        Args: keys, a 1-D uint64, int64 or float64 array (any order);
        sample, the fraction trained on (at least 10,000 keys, at most all);
        epochs, the most fine-tuning epochs (stops early when the held-out
        likelihood stops improving); seed, for a deterministic result;
        progress, a bar on stderr over every step; family, "spline".
        Returns the trained Flow (meta holds the training's figures).
        Raises ImportError naming ``nfl[train]`` without torch, ValueError
        for an unknown family, a sample outside (0, 1] or no finite keys,
        TypeError for another dtype.  Cost: O(n) over all keys (the bin
        count is chosen on them) plus epochs x O(sample) of training.
        """
        if family not in FAMILIES:
            raise ValueError(f"unknown flow family {family!r}; known: {', '.join(FAMILIES)}")
        from nfl.flow.train import train_spline

        params, meta = train_spline(key_values(keys), sample=sample, epochs=epochs, seed=seed, progress=progress)
        return cls(params, meta)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "Flow":
        """The flow saved at path (no torch needed).

        Raises FlowFileError (a ValueError) if the file is damaged, of
        another version or not a flow file, OSError if it cannot be read.
        Cost: O(bins).
        """
        params, meta = weights.load(path)
        return cls(params, meta)

    def save(self, path: "str | os.PathLike[str]") -> None:
        """Writes the weights file atomically (a crash leaves the old file or the new one).

        Raises OSError if it cannot be written.  Cost: O(bins).
        """
        weights.save(path, self._params, self.meta)

    def params(self) -> np.ndarray:
        """The flat float64 vector that nfl_flow_create reads (a copy).  Raises nothing.  Cost: O(p)."""
        return self._params.copy()

    @property
    def family(self) -> str:
        """The flow family: "spline" (a monotone piecewise-linear spline)."""
        return "spline"

    @property
    def feature(self) -> str:
        """The normalization of keys before the spline layers: "linear" or "log"."""
        return layout.FEATURES[int(self._params[3])]

    @property
    def bins(self) -> int:
        """Bins of the linear spline."""
        return int(self._params[6])

    @property
    def table_bytes(self) -> int:
        """Bytes of the compiled transform's tables (knots padded for the lifting, pieces, radix
        cells): what a lookup reads besides the tree."""
        return self.compiled.table_bytes

    def transform(self, keys: np.ndarray) -> np.ndarray:
        """z = f(key) in [0, 1] for every key, monotone non-decreasing in the key.

        Args: keys, a 1-D uint64, int64 or float64 array.  Returns a float64
        array of the same length.  Raises TypeError for another dtype or
        shape.  Cost: O(n), compiled C, one pass.
        """
        return self.compiled.transform(key_values(keys))

    def __reduce__(self):
        return (Flow, (self._params.copy(), self.meta))

    def __repr__(self) -> str:
        return f"<nfl.Flow {self.family}, {self.feature} feature, {self.bins} bins>"
