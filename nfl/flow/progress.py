"""Progress bars for training: tqdm when installed, a plain stderr line otherwise."""
import sys


class _Line:
    """A minimal stand-in for tqdm: one line per update on stderr."""

    def __init__(self, total, desc):
        self.total, self.desc, self.n = total, desc, 0

    def update(self, k=1):
        self.n += k

    def set_postfix_str(self, text):
        print(f"{self.desc}: {self.n}/{self.total} {text}", file=sys.stderr, flush=True)

    def close(self):
        pass


class _Silent(_Line):
    def set_postfix_str(self, text):
        pass


def bar(total: int, desc: str, enabled: bool):
    """An object with update(), set_postfix_str() and close()."""
    if not enabled:
        return _Silent(total, desc)
    try:
        from tqdm import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total, desc=desc, unit="epoch", leave=False, dynamic_ncols=True)
