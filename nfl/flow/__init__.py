"""The numerical normalizing flow: training (torch, lazily), weights file, inference.

``Flow`` is what the index uses; ``nfl.flow.compiled`` is its C transform,
``nfl.flow.train`` fits one (torch).  The paper's BNAF flow, reproduced for
comparison, lives in bench/ (paper_flow.py).  Importing this package imports
neither torch nor numba.
"""
from nfl.flow.flow import FAMILIES, Flow, key_values
from nfl.flow.weights import FlowFileError

__all__ = ["Flow", "FlowFileError", "FAMILIES", "key_values"]
