"""Progress over a whole job (Flow.train, Index.bulk_load) on stderr.

One bar per job, drawn with rich (the project's one progress library, in the
``train`` and ``bench`` extras) on a terminal when it is installed, else one
plain line per step (logs, pipes, no rich).  A job started while another one is showing (Flow.train inside
bulk_load) adds its steps to that bar instead of drawing its own, so the
caller that asked for progress sees the whole work on one bar.
"""
from __future__ import annotations

import contextvars
import sys
import time

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("nfl_progress", default=None)


class _Plain:
    """A bar without rich: one stderr line per step, with the elapsed seconds."""

    def __init__(self, desc: str, total: int):
        self.desc, self.total, self.done, self.start = desc, total, 0, time.perf_counter()

    def grow(self, k: int) -> None:
        self.total += k

    def advance(self, k: int, text: str) -> None:
        self.done += k
        print(f"{self.desc}: {self.done}/{self.total} {text} ({time.perf_counter() - self.start:.1f} s)",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Rich:
    """A transient rich bar on stderr: the job, its current step, steps done of all, elapsed time."""

    def __init__(self, desc: str, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.desc = desc
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        self.progress.start()
        self.task = self.progress.add_task(desc, total=total)

    def grow(self, k: int) -> None:
        self.progress.update(self.task, total=self.progress.tasks[0].total + k)

    def advance(self, k: int, text: str) -> None:
        self.progress.update(self.task, advance=k, description=f"{self.desc}: {text}")

    def close(self) -> None:
        self.progress.stop()


class Work:
    """Progress of one job of `total` steps; a context manager.

    step(text, k) ends k steps and names the next one; more(k) adds steps
    found on the way (early stopping ends with skip()).  Disabled work and
    work nested in a showing job cost a few attribute reads per step.

    >>> with Work("demo", 2, enabled=False) as work:
    ...     work.step("second step")
    ...     work.more(3)
    ...     work.skip()
    ...     work._left
    0
    """

    def __init__(self, desc: str, total: int, enabled: bool):
        self._outer = _ACTIVE.get()
        self._bar = None
        self._token = None
        self._left = total
        if self._outer is not None:
            self._outer.more(total)
        elif enabled:
            self._bar = _Plain(desc, total)
            if sys.stderr.isatty():
                try:
                    self._bar = _Rich(desc, total)
                except ImportError:
                    pass
            self._token = _ACTIVE.set(self)

    def __enter__(self) -> "Work":
        return self

    def __exit__(self, *exc) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
        if self._bar is not None:
            self._bar.close()

    def more(self, k: int) -> None:
        """Adds k steps to the job."""
        self._left += k
        if self._outer is not None:
            self._outer.more(k)
        elif self._bar is not None:
            self._bar.grow(k)

    def step(self, text: str, k: int = 1) -> None:
        """Marks k steps done; text names what runs next."""
        self._left -= k
        if self._outer is not None:
            self._outer.step(text, k)
        elif self._bar is not None:
            self._bar.advance(k, text)

    def skip(self, text: str = "done") -> None:
        """Marks every step left done (a job that ended early)."""
        if self._left > 0:
            self.step(text, self._left)

