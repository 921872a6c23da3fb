"""The errors and warnings of nfl.storage: what a caller can catch by name."""


class SnapshotError(ValueError):
    """A snapshot that cannot be used: not a snapshot, wrong version or dtype, truncated, corrupted."""


class SnapshotNotFoundError(FileNotFoundError, SnapshotError):
    """No snapshot where one is needed; both a FileNotFoundError and a SnapshotError."""


class WalError(ValueError):
    """A write-ahead log that cannot be replayed without losing or inventing writes.

    Damage before the log's last record, a gap in its sequence, a bad prefix,
    and (with nfl.open(..., strict=True)) a damaged last record.  A torn last
    record is not an error: a crash leaves one, and it was never acknowledged.
    """


class WalNotFoundError(FileNotFoundError, WalError):
    """A durable index whose log is missing; both a FileNotFoundError and a WalError."""


class LockedError(BlockingIOError):
    """The durable index is already open for writing (by this or another process)."""


class ForkedError(RuntimeError):
    """A write to a durable index from a child of fork(): the log belongs to the process that opened it."""


class RecoveryWarning(UserWarning):
    """Opening a durable index cut bytes off its log's end (kept in a side file, see DurableIndex.recovery)."""
