"""What a result was measured on: machine, software versions, git commit."""
import os
import platform
import subprocess
from importlib import metadata


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine():
    """CPU, cores, memory, OS."""
    return {
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": platform.platform(),
        "hostname": platform.node(),
        "load_average": _load_average(),
    }


def _load_average():
    """1/5/15-minute load average: other work on a shared machine shows up in the tails."""
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def versions():
    """Python, the packages under test, and the checkout's commit."""
    out = {"python": platform.python_version(), "git_commit": _git_commit()}
    for package in ("nfl", "numpy", "numba", "cffi", "sortedcontainers", "pygm", "rich", "matplotlib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    if out["nfl"] is None:  # built in place, not installed
        try:
            import nfl

            out["nfl"] = getattr(nfl, "__version__", None)
        except ImportError:
            pass
    return out
