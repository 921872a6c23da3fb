"""Key datasets, SOSD key files, YCSB workloads and the NFL paper's workloads, as replayable op streams.

Run as ``python -m workloads keys|ops|info``; see ``workloads/__main__.py``.
"""
