"""The flow weights file: versioned, checksummed, readable without torch.

Layout (little-endian):

    8 bytes   magic b"NFLFLOW\\0"
    u32       file format version (1)
    u32       length H of the header
    H bytes   header, UTF-8 JSON: family, feature (the normalization), scale,
              offset, bins, n_params, and "meta" (how the flow was trained)
    8*N bytes the flat parameter vector (float64), N = header["n_params"]
    32 bytes  SHA-256 of everything before it

Saving is atomic and durable (nfl.storage.files.atomic_file).
"""
import hashlib
import json
import struct

import numpy as np

from nfl.flow import layout
from nfl.storage.files import atomic_write

MAGIC = b"NFLFLOW\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sII")
_DIGEST = 32


class FlowFileError(ValueError):
    """A flow file that cannot be used: bad magic, version, checksum, or truncated."""


def dumps(params: np.ndarray, meta: dict) -> bytes:
    """The bytes of a weights file for a flat parameter vector."""
    spline = layout.unpack(params)
    header = {
        "family": "spline",
        "feature": spline.feature,
        "scale": spline.scale,
        "offset": spline.offset,
        "bins": int(spline.masses.size),
        "n_params": int(params.size),
        "meta": meta,
    }
    head = json.dumps(header, sort_keys=True).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)) + head + params.astype("<f8").tobytes()
    return body + hashlib.sha256(body).digest()


def loads(data: bytes):
    """(params, meta) from the bytes of a weights file; FlowFileError if unusable."""
    if len(data) < _PREFIX.size + _DIGEST:
        raise FlowFileError("not a flow file: truncated")
    magic, version, head_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise FlowFileError("not a flow file: bad magic")
    if version != FORMAT_VERSION:
        raise FlowFileError(f"flow file version {version} is not supported (this nfl reads {FORMAT_VERSION})")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise FlowFileError("flow file checksum mismatch: truncated or corrupted")
    try:
        header = json.loads(body[_PREFIX.size:_PREFIX.size + head_len].decode())
        n = int(header["n_params"])
        start = _PREFIX.size + head_len
        if len(body) != start + 8 * n:
            raise FlowFileError("flow file: parameter block has the wrong length")
        params = np.frombuffer(body, dtype="<f8", count=n, offset=start).astype(np.float64)
        spline = layout.unpack(params)
        if header["family"] != "spline" or header["feature"] != spline.feature:
            raise FlowFileError("flow file: header does not match its parameters")
        return params, dict(header.get("meta", {}))
    except FlowFileError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FlowFileError(f"flow file: malformed ({exc})") from exc


def save(path, params: np.ndarray, meta: dict) -> None:
    """Writes a weights file atomically and durably (nfl.storage.files.atomic_write)."""
    atomic_write(path, [dumps(params, meta)])


def load(path):
    """(params, meta) from a weights file."""
    with open(path, "rb") as f:
        return loads(f.read())
