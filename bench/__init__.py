"""The benchmark runner: replays op streams against nfl and its peers.

`python -m bench quick | run | paper`; see ../../shared/design/workloads.md,
section "The runner".  A tool run from the checkout; the library never imports it.
"""
