"""Stateful property tests: nfl.Index (flow off) against SortedDict, per key dtype."""
from hypothesis import HealthCheck, settings

from index_model import IndexMachine

SETTINGS = settings(max_examples=60, stateful_step_count=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Uint64Machine(IndexMachine):
    key_dtype = "uint64"


class Int64Machine(IndexMachine):
    key_dtype = "int64"


class Float64Machine(IndexMachine):
    key_dtype = "float64"


TestUint64 = Uint64Machine.TestCase
TestInt64 = Int64Machine.TestCase
TestFloat64 = Float64Machine.TestCase
for _case in (TestUint64, TestInt64, TestFloat64):
    _case.settings = SETTINGS
del _case
