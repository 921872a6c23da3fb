"""The numerical normalizing flow: training (torch, lazily), weights file, inference.

``Flow`` is what the index uses; ``nfl.flow.reference.transform_numba`` is the
numba reference of the C transform; ``nfl.flow.baseline`` reproduces the
paper's BNAF flow for comparison.  Importing this package imports neither
torch nor numba.
"""
from nfl.flow.flow import FAMILIES, Flow, key_values
from nfl.flow.weights import FlowFileError

__all__ = ["Flow", "FlowFileError", "FAMILIES", "key_values"]
