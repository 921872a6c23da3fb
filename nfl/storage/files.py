"""Durable file primitives: writing whole buffers, atomic replace, directory fsync."""
import contextlib
import os
import secrets

_TEMP = ".tmp-"  # atomic_file's temporary files are named path + _TEMP + pid-random


def write_all(fd: int, data) -> None:
    """Writes every byte of a buffer to fd (os.write may write less than asked)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view):]


def fsync_dir(directory) -> None:
    """Makes the directory's entries (a create, a rename) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path):
    """A new binary file object whose contents replace path atomically and durably on success.

    Durability, the one level every file nfl and its tools write gets: the
    data is written to a temporary file in the same directory and fsynced,
    renamed over path, and the directory fsynced, so after a crash at any
    point path is the whole old file or the whole new one, and once the
    block exits the new one survives a crash.  On an exception path is
    untouched and the temporary file removed.
    """
    path = os.fspath(path)
    tmp = f"{path}{_TEMP}{os.getpid()}-{secrets.token_hex(4)}"
    f = open(tmp, "xb")
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def atomic_write(path, parts) -> None:
    """Writes the buffers in parts to path atomically and durably (see atomic_file)."""
    with atomic_file(path) as f:
        for part in parts:
            write_all(f.fileno(), part)


def remove_temps(path) -> None:
    """Deletes temporary files that atomic_file(path) left behind when killed.

    Only safe while no one else can be writing path (a durable index holds its lock).
    """
    directory, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(directory):
        if entry.startswith(name + _TEMP):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))
