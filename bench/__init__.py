"""The benchmark runner: replays op streams against nfl and its peers.

`python -m bench quick | run | paper` from a checkout's root, `python -m
nfl_bench ...` where nfl is installed (the same package under a name that
does not squat a generic one in site-packages); see
../../shared/design/workloads.md, section "The runner".  The library never
imports it.
"""
import importlib

#: "" in a checkout (packages bench, workloads), "nfl_" when installed (nfl_bench, nfl_workloads).
PREFIX = __name__[: -len("bench")]
#: How to run this package from a shell: "python -m bench" or "python -m nfl_bench".
COMMAND = f"python -m {__name__}"


def workloads(module: str):
    """workloads.<module> from the workloads package beside this one (nfl_workloads when installed)."""
    return importlib.import_module(f"{PREFIX}workloads.{module}")
