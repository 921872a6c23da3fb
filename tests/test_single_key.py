"""The native single-key path (nfl._index.Core, native/pyindex.c).

- Every single-key op, every key and value dtype, flow off and on, against a
  dict model (hypothesis, stateful), with keys and values given as Python
  ints, integral floats, bools and numpy scalars.
- The C scalar converters against ORACLE, the Python rules they replaced
  (nfl/_keys.py before the single-key path), frozen here: the same result or
  the same exception type and message for any input.  Two changes, both for
  np.longdouble (issue 19): a float64 key must be exactly representable, and
  an integral long double above 2**53 is an integer (math.floor had rounded
  it through float64 and refused it).
- References: many ops keep the refcounts of key and value objects; RSS stays
  flat (10M ops under `slow`).
- Single-key writes in threads beside get_many and scans (GIL released there).
"""
import gc
import math
import os
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sortedcontainers import SortedDict

import nfl
from nfl import _index, _keys

I64 = (-(2**63), 2**63 - 1)
U64 = (0, 2**64 - 1)
RANGES = {"uint64": U64, "int64": I64}
DTYPES = ("uint64", "int64", "float64")

# ---- ORACLE: the scalar rules as nfl/_keys.py stated them in Python -------------
_DOUBLE, _WORD = struct.Struct("<d"), struct.Struct("<Q")


def oracle_integral(key, what):
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, (float, np.floating)):
        if math.isnan(key):
            raise ValueError(f"{what} is NaN")
        if not math.isfinite(key) or key != int(key):  # was math.floor: rounded a long double
            raise ValueError(f"{what} {key!r} is not an integer")
        return int(key)
    raise TypeError(f"{what} must be an int or float, not {type(key).__name__}")


def oracle_key_bits(key, dtype):
    if dtype == "float64":
        if isinstance(key, (float, np.floating)):
            if math.isnan(key):
                raise ValueError("key is NaN")
            if float(key) != key:  # issue 19: a long double must be exact
                raise ValueError(f"key {key!r} is not exactly representable as float64")
            return _WORD.unpack(_DOUBLE.pack(key))[0]
        if isinstance(key, (int, np.integer)):
            key = int(key)
            try:
                f = float(key)
            except OverflowError:
                raise ValueError(f"key {key} is out of range for float64") from None
            if int(f) != key:
                raise ValueError(f"key {key} is not exactly representable as float64")
            return _WORD.unpack(_DOUBLE.pack(f))[0]
        raise TypeError(f"key must be an int or float, not {type(key).__name__}")
    k = key if type(key) is int else oracle_integral(key, "key")
    lo, hi = RANGES[dtype]
    if not lo <= k <= hi:
        raise ValueError(f"key {k} is out of range for {dtype} [{lo}, {hi}]")
    return k & (2**64 - 1)


def oracle_value_bits(value, dtype):
    v = value if type(value) is int else oracle_integral(value, "value")
    lo, hi = RANGES[dtype]
    if not lo <= v <= hi:
        raise ValueError(f"value {v} is out of range for {dtype} [{lo}, {hi}]")
    return v & (2**64 - 1)


def outcome(fn, *args):
    """fn's result, or (exception type, message)."""
    try:
        return fn(*args)
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


EDGES = [0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**1024, -(2**1024)]
numbers = st.one_of(
    st.integers(),
    st.sampled_from(EDGES),
    st.sampled_from(EDGES).map(lambda k: float(k) if abs(k) < 2**1000 else math.inf),
    st.floats(),
    st.floats(-(2.0**65), 2.0**65).map(math.floor),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.integers(-(2**31), 2**31 - 1).map(np.int32),
    st.integers(0, 255).map(np.uint8),
    st.floats(width=32).map(np.float32),
    st.floats(width=16).map(np.float16),
    st.floats().map(np.float64),
    st.integers(-(2**70), 2**70).map(lambda k: np.longdouble(k)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: np.longdouble(f) + np.longdouble(0.25)),
    st.sampled_from(["1", None, b"x", [1], (1,), 1j, np.bool_(True), object()]),
)


@settings(max_examples=1500, deadline=None)
@given(key=numbers)
def test_key_rules_are_the_python_rules(key):
    for dtype in DTYPES:
        assert outcome(_keys.key_bits, key, dtype) == outcome(oracle_key_bits, key, dtype), dtype


@settings(max_examples=1000, deadline=None)
@given(value=numbers)
def test_value_rules_are_the_python_rules(value):
    for dtype in ("int64", "uint64"):
        assert outcome(_keys.value_bits, value, dtype) == outcome(oracle_value_bits, value, dtype), dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_ops_apply_the_key_rules(dtype):
    """Every single-key op raises what key_bits raises (in: False instead)."""
    idx = nfl.Index(key_dtype=dtype)
    for key in [-1, 2**64, 1.5, math.nan, math.inf, 2**53 + 1, "x", None, np.longdouble(2**53) + 1]:
        expect = outcome(oracle_key_bits, key, dtype)
        if not isinstance(expect, tuple):
            continue
        for op in (lambda: idx[key], lambda: idx.get(key), lambda: idx.__setitem__(key, 1),
                   lambda: idx.__delitem__(key), lambda: idx.insert(key, 1), lambda: idx.replace(key, 1),
                   lambda: idx.delete(key), lambda: idx.pop(key, 0), lambda: idx.setdefault(key, 1)):
            with pytest.raises(expect[0]) as info:
                op()
            assert str(info.value) == expect[1]
        assert key not in idx
    assert len(idx) == 0


def test_long_double_keys_exact_or_refused():
    """Issue 19: a long double key is never rounded to another key."""
    f = nfl.Index(key_dtype="float64")
    with pytest.raises(ValueError, match="not exactly representable"):
        f[np.longdouble(2**53) + 1] = 1
    f[np.longdouble(2**53)] = 2
    assert f[2.0**53] == 2 and f[np.longdouble(2**53)] == 2
    with pytest.raises(ValueError):
        f.get(np.longdouble(2**53) + 1)
    u = nfl.Index(key_dtype="uint64")
    u[np.longdouble(2**64 - 1)] = 3  # exact in the 64-bit mantissa
    assert u[2**64 - 1] == 3
    with pytest.raises(ValueError, match="not an integer"):
        u[np.longdouble(2**40) + np.longdouble(0.5)] = 1


def test_key_error_carries_the_key():
    idx = nfl.Index()
    for op in (lambda k: idx[k], idx.__delitem__, idx.pop):
        with pytest.raises(KeyError) as info:
            op(np.uint64(7))
        assert info.value.args == (np.uint64(7),)


def test_argument_counts():
    idx = nfl.Index()
    for call in (lambda: idx.get(), lambda: idx.get(1, 2, 3), lambda: idx.insert(1),
                 lambda: idx.replace(1, 2, 3), lambda: idx.pop(), lambda: idx.setdefault()):
        with pytest.raises(TypeError):
            call()


def test_pop_and_setdefault_semantics():
    idx = nfl.Index(value_dtype="uint64")
    assert idx.setdefault(5, 7) == 7 and idx[5] == 7
    assert idx.setdefault(5, 9) == 7 and idx[5] == 7
    assert idx.setdefault(5) == 7  # default needed only when absent
    with pytest.raises(TypeError):
        idx.setdefault(6)  # None cannot be stored
    with pytest.raises(ValueError):
        idx.setdefault(6, -1)
    assert 6 not in idx and len(idx) == 1
    assert idx.setdefault(6, 2.0) == 2 and type(idx[6]) is int
    assert idx.pop(5) == 7 and idx.pop(5, "gone") == "gone" and len(idx) == 1
    with pytest.raises(KeyError):
        idx.pop(5)
    assert idx[6] == 2 and idx.get(2**64 - 1) is None
    idx[2**64 - 1] = 2**64 - 1
    assert idx.pop(2**64 - 1) == 2**64 - 1


def test_writes_are_seen_by_iterators():
    idx = nfl.Index.bulk_load(np.arange(10, dtype=np.uint64), flow="off")
    for write in (lambda: idx.__setitem__(3, 1), lambda: idx.insert(100, 1), lambda: idx.replace(3, 2),
                  lambda: idx.delete(100), lambda: idx.pop(4), lambda: idx.setdefault(4, 1),
                  lambda: idx.__delitem__(4)):
        it = iter(idx.items())
        next(it)
        write()
        with pytest.raises(RuntimeError, match="changed"):
            list(it)


def test_uninitialized_index_raises():
    idx = nfl.Index.__new__(nfl.Index)
    with pytest.raises(RuntimeError, match="not initialized"):
        idx[1]
    with pytest.raises(RuntimeError):
        len(idx)
    ptr = nfl._native.lib.nfl_create(0, nfl._native.ffi.NULL, 0)
    good = nfl.Index()
    with pytest.raises(ValueError, match="once"):
        good._attach(int(nfl._native.ffi.cast("uintptr_t", ptr)), 0, True)
    nfl._native.lib.nfl_free(ptr)


# ---- stateful: every single-key op against a model ------------------------------


def key_forms(key, dtype):
    """Ways a user may spell one key of the dtype (all must be the same key)."""
    forms = [key]
    if dtype == "float64":
        forms.append(np.float64(key))
        with np.errstate(over="ignore"):
            single = np.float32(key)
        if float(single) == key:  # exactly: numpy would compare key as a float32
            forms.append(single)
        if abs(key) < 2**63 and key == int(key):
            forms.append(int(key))
    else:
        forms.append(np.uint64(key) if dtype == "uint64" else np.int64(key))
        if abs(key) < 2**53:
            forms.append(float(key))
        if key in (0, 1):
            forms.append(bool(key))
    return st.sampled_from(forms)


class SingleKeyMachine(RuleBasedStateMachine):
    key_dtype = "uint64"
    value_dtype = "int64"
    flow = "off"

    def __init__(self):
        super().__init__()
        self.model = {}
        self.index = None

    def key_strategy(self):
        if self.key_dtype == "float64":
            return st.one_of(st.floats(allow_nan=False), st.integers(-50, 50).map(float))
        lo, hi = RANGES[self.key_dtype]
        return st.one_of(st.integers(lo, hi), st.integers(max(lo, -50), 50), st.sampled_from([lo, hi]))

    def value_strategy(self):
        lo, hi = RANGES[self.value_dtype]
        return st.one_of(st.integers(lo, hi), st.integers(max(lo, -5), 5).map(float),
                         st.integers(0, 100).map(np.int16))

    def pick(self, data):
        """A key (often one present) in one of its spellings, and its model key."""
        if self.model and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(self.model)))
        else:
            key = data.draw(self.key_strategy())
            key = float(key) if self.key_dtype == "float64" else key
        if key == 0:
            key = 0.0 if self.key_dtype == "float64" else 0  # -0.0 is 0.0
        return data.draw(key_forms(key, self.key_dtype)), key

    def value(self, data):
        v = data.draw(self.value_strategy())
        return v, int(v)

    @initialize(n=st.integers(0, 2000), seed=st.integers(0, 2**32 - 1))
    def build(self, n, seed):
        rng = np.random.default_rng(seed)
        if self.key_dtype == "float64":
            keys = np.unique(rng.lognormal(0, 3, n) - 1.0)
        else:
            keys = np.unique((rng.lognormal(0, 3, n) * 1e6).astype(self.key_dtype))
        lo, hi = RANGES[self.value_dtype]
        values = rng.integers(max(lo, -(2**62)), 2**62, keys.size).astype(self.value_dtype)
        flow = self.flow
        if n == 0 or (flow != "off" and keys.size < 100):
            flow = "off"
        self.index = nfl.Index.bulk_load(keys, values, flow=flow)
        self.model = dict(zip(keys.tolist(), values.tolist()))

    @rule(data=st.data())
    def read(self, data):
        key, k = self.pick(data)
        assert self.index.get(key) == self.model.get(k)
        assert self.index.get(key, "d") == self.model.get(k, "d")
        assert (key in self.index) == (k in self.model)
        if k in self.model:
            assert self.index[key] == self.model[k]
        else:
            with pytest.raises(KeyError):
                self.index[key]

    @rule(data=st.data())
    def setitem(self, data):
        key, k = self.pick(data)
        v, mv = self.value(data)
        self.index[key] = v
        self.model[k] = mv

    @rule(data=st.data())
    def insert(self, data):
        key, k = self.pick(data)
        v, mv = self.value(data)
        assert self.index.insert(key, v) == (k not in self.model)
        self.model.setdefault(k, mv)

    @rule(data=st.data())
    def replace(self, data):
        key, k = self.pick(data)
        v, mv = self.value(data)
        assert self.index.replace(key, v) == (k in self.model)
        if k in self.model:
            self.model[k] = mv

    @rule(data=st.data())
    def delete(self, data):
        key, k = self.pick(data)
        assert self.index.delete(key) == (k in self.model)
        self.model.pop(k, None)

    @rule(data=st.data())
    def delitem(self, data):
        key, k = self.pick(data)
        if k in self.model:
            del self.index[key]
            del self.model[k]
        else:
            with pytest.raises(KeyError):
                del self.index[key]

    @rule(data=st.data())
    def pop(self, data):
        key, k = self.pick(data)
        if data.draw(st.booleans()):
            assert self.index.pop(key, "d") == self.model.pop(k, "d")
        elif k in self.model:
            assert self.index.pop(key) == self.model.pop(k)
        else:
            with pytest.raises(KeyError):
                self.index.pop(key)

    @rule(data=st.data())
    def setdefault(self, data):
        key, k = self.pick(data)
        v, mv = self.value(data)
        assert self.index.setdefault(key, v) == self.model.setdefault(k, mv)

    @invariant()
    def same_size(self):
        if self.index is not None:
            assert len(self.index) == len(self.model)

    def teardown(self):
        if self.index is not None:
            keys, values = self.index.scan(-math.inf, len(self.model) + 1)
            expect = SortedDict(self.model)
            assert keys.tolist() == list(expect.keys()) and values.tolist() == list(expect.values())


SETTINGS = settings(max_examples=12, stateful_step_count=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _machine(key_dtype, value_dtype, flow):
    cls = type(f"Machine_{key_dtype}_{value_dtype}_{flow}", (SingleKeyMachine,),
               {"key_dtype": key_dtype, "value_dtype": value_dtype, "flow": flow})
    case = cls.TestCase
    case.settings = SETTINGS
    return case


for _k in DTYPES:
    for _v in ("int64", "uint64"):
        for _f in ("off", "auto"):
            globals()[f"TestSingleKey_{_k}_{_v}_{_f}"] = _machine(_k, _v, _f)
del _k, _v, _f


# ---- references and memory ---------------------------------------------------------


def _all_ops(idx, key, value, missing):
    idx[key] = value
    idx[key]
    idx.get(key)
    idx.get(missing, value)
    key in idx
    missing in idx
    idx.replace(key, value)
    idx.insert(key, value)
    idx.setdefault(key, value)
    idx.pop(key)
    idx.pop(missing, value)
    idx.insert(key, value)
    idx.delete(key)
    idx.setdefault(key, value)
    del idx[key]
    try:
        idx[missing]
    except KeyError:
        pass
    try:
        idx.pop(missing)
    except KeyError:
        pass
    try:
        idx[-1] = value  # refused: out of range for uint64
    except ValueError:
        pass
    len(idx)


def test_ops_keep_refcounts():
    idx = nfl.Index.bulk_load(np.arange(1000, dtype=np.uint64), flow="off")
    key, value, missing = 2**62 + 12345, 2**61 + 999, 2**62 + 7  # not small ints: real objects
    npkey = np.uint64(2**63 + 5)
    gc.collect()
    before = [sys.getrefcount(o) for o in (key, value, missing, npkey)]
    for _ in range(20_000):
        _all_ops(idx, key, value, missing)
        _all_ops(idx, npkey, value, missing)
    gc.collect()
    assert [sys.getrefcount(o) for o in (key, value, missing, npkey)] == before
    assert len(idx) == 1000


RSS_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, nfl
    sys.path.insert(0, {tests!r})
    from test_single_key import _all_ops
    n = int(sys.argv[1])
    idx = nfl.Index.bulk_load(np.arange(1000, dtype=np.uint64), flow="off")
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    for r in range(10):
        for i in range(n // 10 // 19):  # _all_ops is 19 single-key ops
            _all_ops(idx, 2**62 + i, 2**61 + i, 2**63 + i)
        print(rss())
""")


def _rss_growth(ops):
    script = RSS_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script, str(ops)], capture_output=True, text=True,
                          timeout=3600, cwd=root, env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr
    rss = [int(x) for x in done.stdout.split()]
    return rss, (max(rss[3:]) - rss[2]) / rss[2]


def test_rss_flat_under_single_key_ops():
    rss, growth = _rss_growth(400_000)
    assert growth < 0.02, [r >> 10 for r in rss]


@pytest.mark.slow
def test_rss_flat_under_ten_million_single_key_ops():
    rss, growth = _rss_growth(10_000_000)
    assert growth < 0.02, [r >> 10 for r in rss]


# ---- threads -----------------------------------------------------------------------


def test_single_key_writers_beside_batch_readers_and_scans():
    """Writers own disjoint key stripes and write value = key * 3 + generation
    bits; get_many, scans and single-key readers run meanwhile (their GIL
    released in C), and the end state is exact."""
    n, writers = 30_000, 2
    base = np.arange(n, dtype=np.uint64) * np.uint64(4)
    idx = nfl.Index.bulk_load(base, base.astype(np.int64) * 3, flow="off")
    stop, errors, final = threading.Event(), [], {}

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 (re-raised below)
                errors.append(exc)
                stop.set()
        return run

    def writer(w):
        def run():
            rng = np.random.default_rng(w)
            mine = {}
            for step in range(40_000):
                k = int(rng.integers(0, n)) * 4 + 1 + w  # stripe w: keys 4i + 1 + w
                op = step % 5
                if op == 0:
                    idx[k] = k * 3
                    mine[k] = k * 3
                elif op == 1:
                    assert idx.insert(k, k * 3) == (k not in mine)
                    mine.setdefault(k, k * 3)
                elif op == 2:
                    assert idx.pop(k, None) == mine.pop(k, None)
                elif op == 3:
                    assert idx.setdefault(k, k * 3) == mine.setdefault(k, k * 3)
                else:
                    assert idx.replace(k, k * 3) == (k in mine)
                if stop.is_set():
                    break
            final[w] = mine
        return run

    def batch_reader():
        while not stop.is_set() and len(final) < writers:
            values, found = idx.get_many(base)
            assert found.all() and (values == base.astype(np.int64) * 3).all()
            keys, values = idx.scan(0, 5000)
            assert (values == keys.astype(np.int64) * 3).all()
            ks, vs = idx.range(0, 2**64)
            assert (vs == ks.astype(np.int64) * 3).all()

    def point_reader():
        rng = np.random.default_rng(99)
        while not stop.is_set() and len(final) < writers:
            k = int(rng.integers(0, 4 * n))
            v = idx.get(k)
            assert v is None or v == k * 3
            assert idx[int(base[k % n])] == int(base[k % n]) * 3

    threads = [threading.Thread(target=guard(writer(w))) for w in range(writers)]
    threads += [threading.Thread(target=guard(batch_reader)), threading.Thread(target=guard(point_reader))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
        assert not t.is_alive(), "deadlock"
    if errors:
        raise errors[0]
    expect = {int(k): int(k) * 3 for k in base}
    for mine in final.values():
        expect.update(mine)
    keys, values = idx.range(0, 2**64)
    assert dict(zip(keys.tolist(), values.tolist())) == expect
    assert len(idx) == len(expect)
