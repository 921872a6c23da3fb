"""The errors of nfl.storage: what a caller can catch by name."""


class SnapshotError(ValueError):
    """A snapshot that cannot be used: not a snapshot, wrong version or dtype, truncated, corrupted."""


class SnapshotNotFoundError(FileNotFoundError, SnapshotError):
    """No snapshot where one is needed; both a FileNotFoundError and a SnapshotError."""


class WalError(ValueError):
    """A write-ahead log damaged before its tail (a torn tail record is not an error)."""


class LockedError(BlockingIOError):
    """The durable index is already open for writing (by this or another process)."""
