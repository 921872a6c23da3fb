"""Durable file primitives: writing whole buffers, atomic replace, directory fsync."""
import contextlib
import os
import secrets

_TEMP = ".tmp-"  # atomic_write's temporary files are named path + _TEMP + pid-random


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


def atomic_write(path, parts) -> None:
    """Writes the buffers in parts to path: after a crash, path is the old file or the new one.

    A temporary file in the same directory is written, fsynced, renamed over
    path, and the directory fsynced so the rename itself survives a crash.
    """
    path = os.fspath(path)
    tmp = f"{path}{_TEMP}{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            for part in parts:
                write_all(fd, part)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def remove_temps(path) -> None:
    """Deletes temporary files that atomic_write(path, ...) left behind when killed.

    Only safe while no one else can be writing path (a durable index holds its lock).
    """
    directory, name = os.path.split(os.path.abspath(path))
    for entry in os.listdir(directory):
        if entry.startswith(name + _TEMP):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, entry))
