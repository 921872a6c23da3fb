"""Progress bars for the runner: one bar over all runs, one over the ops of the current replay."""
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Steps:
    """Rich progress display; use as a context manager."""

    def __init__(self, total_runs, console=None):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        )
        self.runs = self.progress.add_task("runs", total=total_runs)
        self.current = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def begin(self, title):
        """Starts one (index, workload, path) run."""
        self.progress.update(self.runs, description=title)

    def status(self, text):
        """Names a step that has no count (loading, building)."""
        self._replace(self.progress.add_task(text, total=None))

    def ops(self, title, total):
        """A bar over `total` ops; returns the callable that advances it."""
        task = self.progress.add_task(title, total=total)
        self._replace(task)
        return lambda k: self.progress.advance(task, k)

    def done(self):
        """Ends the current run."""
        self._replace(None)
        self.progress.advance(self.runs)

    def _replace(self, task):
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.current = task


class Quiet:
    """The same interface, showing nothing (tests, scripts)."""

    def begin(self, title):
        pass

    def status(self, text):
        pass

    def ops(self, title, total):
        return lambda k: None

    def done(self):
        pass
