"""Op codes of an op stream (the C executor's, through workloads.stream) and their names in reports (YCSB's)."""
import numpy as np

from . import workloads

_stream = workloads("stream")
DELETE, INSERT, OP_NAMES, READ, RMW, SCAN, UPDATE = (_stream.DELETE, _stream.INSERT, _stream.OP_NAMES, _stream.READ,
                                                     _stream.RMW, _stream.SCAN, _stream.UPDATE)

NAMES = tuple(OP_NAMES)
WRITES = frozenset({UPDATE, INSERT, RMW, DELETE})
CHECKED = frozenset({READ, RMW})  # ops whose read result the stream states


def present(stream):
    """The op codes that occur in a stream, ascending."""
    return [int(c) for c in np.unique(stream.op)]


def describe(codes):
    """'insert/update' style list of op names, for n/a reasons."""
    return "/".join(NAMES[c].lower() for c in sorted(codes))
