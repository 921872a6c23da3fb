"""A hypothesis state machine that checks nfl.Index against SortedDict.

Every point, batch, ordered and mapping operation runs on both and must
agree; views taken when the index is built must see every later write.  Key
strategies aim at the hard places: the dtype's extremes, 2**53 and 2**63,
long runs of consecutive integers (equal after conversion to double),
negative and tiny floats, and keys already present.  Subclasses choose the
key dtype and how the index is built (flow off, or a given flow).  After
every step the tree must also pass its own structural check (Index._check).
"""
import math

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sortedcontainers import SortedDict

import nfl
from workloads import hard

I64 = (-(2**63), 2**63 - 1)
U64 = (0, 2**64 - 1)


def integer_keys(lo, hi):
    """Integers in [lo, hi], concentrated near the hard points."""
    anchors = [p for p in (0, 2**53, 2**63, lo, hi, -(2**53)) if lo <= p <= hi]
    near = st.builds(lambda a, d: min(max(a + d, lo), hi), st.sampled_from(anchors), st.integers(-3000, 3000))
    return st.one_of(st.integers(lo, hi), near, st.integers(max(lo, -50), min(hi, 50)))


def float_keys():
    specials = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1.0, -1.0, math.inf, -math.inf,
                                1.7976931348623157e308, -1.7976931348623157e308, 2.0**53])
    return st.one_of(st.floats(allow_nan=False), specials,
                     st.floats(-1e-300, 1e-300, allow_nan=False),
                     st.integers(-(2**60), 2**60).map(float))


KEY_STRATEGIES = {
    "uint64": integer_keys(*U64),
    "int64": integer_keys(*I64),
    "float64": float_keys(),
}


def canonical(key, dtype):
    """The key as the model stores it (floats for a float index)."""
    return float(key) if dtype == "float64" else int(key)


def initial_keys(kind, n, seed, dtype):
    """A bulk-load key set of one of the shapes the tree must handle."""
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        raw = rng.lognormal(0.0, 2.0, n) * 1e9
    elif kind == "clustered":
        widths = 10.0 ** rng.integers(0, 12, 8)
        centers = rng.uniform(0, 1e15, 8)
        c = rng.integers(0, 8, n)
        raw = centers[c] + rng.uniform(0, 1, n) * widths[c]
    elif kind == "dense-runs":  # runs of consecutive ids all over the 64-bit range
        raw = hard.dense_runs(rng, n, mean_run=64)
        if dtype == "int64":
            return np.unique(raw.view(np.int64))
        return np.unique(raw.astype(np.float64) if dtype == "float64" else raw)
    elif kind == "wide":  # many magnitudes: +-10^(+-300) floats, 2^(0..63) integers
        if dtype == "float64":
            return np.unique(hard.wide_floats(rng, n))
        raw = np.unique((2.0 ** rng.uniform(0, 62.9, n)).astype(np.int64))
        return raw if dtype == "int64" else raw.astype(np.uint64)
    else:  # consecutive runs near 2**53 and 2**63, ties after double rounding
        base = 2**63 if dtype == "uint64" else 2**53
        raw = np.array([base + i for i in range(n)], dtype=object)
    if dtype == "float64":
        keys = np.unique(np.array([float(x) for x in raw]) - (5e8 if kind == "lognormal" else 0.0))
    elif dtype == "int64":
        keys = np.unique(np.array([int(x) - (2**62 if kind == "consecutive" else 0) for x in raw], dtype=np.int64))
        if kind != "consecutive":
            keys = np.unique(keys - np.int64(10**9))
    else:
        keys = np.unique(np.array([int(x) for x in raw], dtype=np.uint64))
    return keys


class IndexMachine(RuleBasedStateMachine):
    """Runs the same operations on an nfl.Index and a SortedDict."""

    key_dtype = "uint64"
    flow = "off"
    value_dtype = "int64"
    value_strategy = st.integers(*I64)  # what the rules write

    def value_array(self, values):
        """A batch of drawn values as the batch operations take them."""
        return np.array(values, dtype=np.int64)

    def fresh_values(self, rng, n):
        """n generated values: (what bulk_load or put_many takes, the same values as a list)."""
        values = rng.integers(I64[0], I64[1], n, dtype=np.int64)
        return values, values.tolist()

    def other_value(self, value):
        """A value that differs from value."""
        return value ^ 1

    def __init__(self):
        super().__init__()
        self.model = SortedDict()
        self.index = None
        self.views = None  # keys(), values(), items() taken at build: they must follow every write
        self.keys = KEY_STRATEGIES[self.key_dtype]

    # ---- helpers -------------------------------------------------------
    def k(self, key):
        return canonical(key, self.key_dtype)

    def np_keys(self, keys):
        return np.array([self.k(x) for x in keys], dtype=self.key_dtype)

    def pick(self, data):
        """A key: often one already present, else a fresh one."""
        if self.model and data.draw(st.booleans()):
            return self.model.keys()[data.draw(st.integers(0, len(self.model) - 1))]
        return self.k(data.draw(self.keys))

    def bound(self, data):
        """A range bound: None, a key, between keys, or outside every key the dtype holds."""
        kind = data.draw(st.sampled_from(["none", "key", "between", "outside"]))
        if kind == "none":
            return None
        if kind == "outside":
            return data.draw(st.sampled_from([-(2**65), 2**65, -math.inf, math.inf, -1e300, 1e300, -0.5]))
        key = self.pick(data)
        if kind == "between" and abs(key) < 2**52:
            return key + 0.5  # between two integers; near a float key
        return key

    # ---- setup ---------------------------------------------------------
    @initialize(kind=st.sampled_from(["empty", "lognormal", "clustered", "consecutive", "dense-runs", "wide"]),
                n=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
    def build(self, kind, n, seed):
        if kind == "empty":
            self.index = nfl.Index(key_dtype=self.key_dtype, value_dtype=self.value_dtype)
            self.views = (self.index.keys(), self.index.values(), self.index.items())
            return
        keys = initial_keys(kind, n, seed, self.key_dtype)
        values, listed = self.fresh_values(np.random.default_rng(seed), keys.size)
        shuffled = np.random.default_rng(seed + 1).permutation(keys.size)
        self.index = nfl.Index.bulk_load(keys[shuffled], values[shuffled], flow=self.flow,
                                         value_dtype=self.value_dtype)
        for key, value in zip(keys.tolist(), listed):
            self.model[self.k(key)] = value
        self.views = (self.index.keys(), self.index.values(), self.index.items())

    # ---- point operations ------------------------------------------------
    @rule(data=st.data())
    def get(self, data):
        key = self.pick(data)
        assert self.index.get(key, "absent") == self.model.get(key, "absent")
        assert (key in self.index) == (key in self.model)
        if key in self.model:
            assert self.index[key] == self.model[key]

    @rule(data=st.data())
    def setitem(self, data):
        key = self.pick(data)
        value = data.draw(self.value_strategy)
        self.index[key] = value
        self.model[key] = value

    @rule(data=st.data())
    def insert(self, data):
        key = self.pick(data)
        value = data.draw(self.value_strategy)
        assert self.index.insert(key, value) == (key not in self.model)
        self.model.setdefault(key, value)

    @rule(data=st.data())
    def replace(self, data):
        key = self.pick(data)
        value = data.draw(self.value_strategy)
        assert self.index.replace(key, value) == (key in self.model)
        if key in self.model:
            self.model[key] = value

    @rule(data=st.data())
    def delete(self, data):
        key = self.pick(data)
        assert self.index.delete(key) == (key in self.model)
        self.model.pop(key, None)

    # ---- mapping operations ----------------------------------------------
    @rule(data=st.data(), with_default=st.booleans())
    def pop(self, data, with_default):
        key = self.pick(data)
        if with_default:
            assert self.index.pop(key, "absent") == self.model.pop(key, "absent")
        elif key in self.model:
            assert self.index.pop(key) == self.model.pop(key)
        else:
            with pytest.raises(KeyError):
                self.index.pop(key)

    @rule(last=st.booleans())
    def popitem(self, last):
        if not self.model:
            with pytest.raises(KeyError):
                self.index.popitem(last=last)
            return
        assert self.index.popitem(last=last) == self.model.popitem(index=-1 if last else 0)

    @rule(data=st.data())
    def setdefault(self, data):
        key = self.pick(data)
        value = data.draw(self.value_strategy)
        assert self.index.setdefault(key, value) == self.model.setdefault(key, value)

    @rule(data=st.data(), form=st.sampled_from(["dict", "pairs", "generator", "index"]))
    def update(self, data, form):
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 20)))]
        values = data.draw(st.lists(self.value_strategy, min_size=len(keys), max_size=len(keys)))
        pairs = list(zip(keys, values))
        if form == "dict":
            other = dict(pairs)
        elif form == "pairs":
            other = pairs  # a repeated key: the last value wins, as dict.update
        elif form == "generator":
            other = iter(pairs)
        else:
            other = nfl.Index(key_dtype=self.key_dtype, value_dtype=self.value_dtype)
            other.update(dict(pairs))
        self.index.update(other)
        self.model.update(pairs)

    @rule()
    def clear_and_refill(self):
        saved = dict(self.model)
        self.index.clear()
        assert len(self.index) == 0 and list(self.index) == [] and self.index == {}
        assert self.index.key_dtype == self.key_dtype
        self.index.update(saved)

    @rule(data=st.data())
    def copy_is_independent(self, data):
        clone = self.index.copy()
        assert clone == self.model and clone == self.index and clone is not self.index
        assert (clone.key_dtype, clone.value_dtype, clone.flow) == (self.index.key_dtype,
                                                                     self.index.value_dtype, self.index.flow)
        key = self.pick(data)
        clone[key] = 7
        clone.pop(key)
        assert self.index.get(key, "absent") == self.model.get(key, "absent")
        assert len(clone) == len(self.model) - (key in self.model)

    @rule(data=st.data())
    def equality(self, data):
        assert self.index == self.model and self.index == dict(self.model)
        assert not (self.index != self.model)
        assert self.index != [] and self.index != list(self.model.items())
        if self.model:
            changed = dict(self.model)
            key = self.pick(data)
            if key in changed:
                changed[key] = self.other_value(changed[key])
            else:
                changed[key] = 0
            assert self.index != changed

    # ---- batch operations ------------------------------------------------
    @rule(data=st.data())
    def get_many(self, data):
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 40)))]
        assert self.index.get_many(self.np_keys(keys), default=-7).tolist() == [self.model.get(k, -7) for k in keys]
        values, found = self.index.get_many(self.np_keys(keys))
        assert found.tolist() == [k in self.model for k in keys]
        assert [v for v, f in zip(values.tolist(), found) if f] == [self.model[k] for k in keys if k in self.model]
        assert self.index.contains_many(self.np_keys(keys)).tolist() == found.tolist()

    @rule(data=st.data())
    def put_many(self, data):
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 40)))]
        values = data.draw(st.lists(self.value_strategy, min_size=len(keys), max_size=len(keys)))
        self.index.put_many(self.np_keys(keys), self.value_array(values))
        for k, v in zip(keys, values):
            self.model[k] = v

    @rule(data=st.data())
    def insert_many(self, data):
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 40)))]
        values = data.draw(st.lists(self.value_strategy, min_size=len(keys), max_size=len(keys)))
        inserted = self.index.insert_many(self.np_keys(keys), self.value_array(values))
        expect = []
        for k, v in zip(keys, values):
            expect.append(k not in self.model)
            self.model.setdefault(k, v)
        assert inserted.tolist() == expect

    @rule(data=st.data())
    def delete_many(self, data):
        keys = [self.pick(data) for _ in range(data.draw(st.integers(0, 40)))]
        deleted = self.index.delete_many(self.np_keys(keys))
        expect = []
        for k in keys:
            expect.append(k in self.model)
            self.model.pop(k, None)
        assert deleted.tolist() == expect

    @rule(seed=st.integers(0, 2**32 - 1), n=st.integers(100, 2000))
    def heavy_insert(self, seed, n):
        """Many new keys at once, clustered near existing ones."""
        rng = np.random.default_rng(seed)
        if self.model:
            base = np.array(list(self.model.keys()), dtype=self.key_dtype)[rng.integers(0, len(self.model), n)]
            if self.key_dtype == "float64":
                with np.errstate(over="ignore", invalid="ignore"):
                    keys = base + rng.normal(0, 1, n) * np.maximum(np.abs(base), 1.0) * 1e-6
                keys = keys[np.isfinite(keys)]
            else:
                lo, hi = U64 if self.key_dtype == "uint64" else I64
                keys = np.array([min(max(int(b) + int(d), lo), hi) for b, d in
                                 zip(base.tolist(), rng.integers(-100, 100, n).tolist())], dtype=self.key_dtype)
        else:
            keys = initial_keys("lognormal", n, seed, self.key_dtype)
        values, listed = self.fresh_values(rng, keys.size)
        self.index.put_many(keys, values)
        for k, v in zip(keys.tolist(), listed):
            self.model[self.k(k)] = v

    @precondition(lambda self: len(self.model) > 0)
    @rule(n=st.integers(1, 1500), above=st.booleans(), step=st.sampled_from([1, 3, 1000, 2**40]),
          ascending=st.booleans())
    def insert_beyond(self, n, above, step, ascending):
        """Keys past the current maximum (or below the minimum) one at a time, in one direction:
        they all land in an edge slot of every node on their path."""
        edge = self.model.keys()[-1 if above else 0]
        if self.key_dtype == "float64":
            scale = max(abs(edge), 1.0) * 1e-9
            cand = [edge + (i if above else -i) * step * scale for i in range(1, n + 1)]
            cand = [k for k in cand if math.isfinite(k)]
        else:
            lo, hi = U64 if self.key_dtype == "uint64" else I64
            cand = [edge + (i if above else -i) * step for i in range(1, n + 1)]
            cand = [k for k in cand if lo <= k <= hi]
        if not ascending:
            cand.reverse()
        for i, k in enumerate(cand):
            assert self.index.insert(k, i) == (self.k(k) not in self.model)
            self.model.setdefault(self.k(k), i)

    @precondition(lambda self: len(self.model) > 0)
    @rule()
    def delete_all_and_reinsert(self):
        keys = list(self.model.keys())
        values = [self.model[k] for k in keys]
        assert self.index.delete_many(self.np_keys(keys)).all()
        assert len(self.index) == 0 and list(self.index.items()) == []
        assert self.index.min_key() is None and self.index.max_key() is None
        assert self.index.insert_many(self.np_keys(keys[::-1]), self.value_array(values[::-1])).all()

    # ---- ordered operations ------------------------------------------------
    @rule(data=st.data())
    def range(self, data):
        lo, hi = self.pick(data), self.pick(data)
        keys, values = self.index.range(lo, hi)
        expect = list(self.model.irange(lo, hi, inclusive=(True, False)))
        assert keys.tolist() == expect
        assert values.tolist() == [self.model[k] for k in expect]

    @rule(data=st.data(), count=st.integers(0, 300))
    def scan(self, data, count):
        start = self.pick(data)
        keys, values = self.index.scan(start, count)
        i = self.model.bisect_left(start)
        expect = list(self.model.islice(i, i + count))
        assert keys.tolist() == expect
        assert values.tolist() == [self.model[k] for k in expect]

    @rule(data=st.data())
    def lower_bound(self, data):
        key = self.pick(data)
        i = self.model.bisect_left(key)
        expect = self.model.keys()[i] if i < len(self.model) else None
        assert self.index.lower_bound(key) == expect

    @rule()
    def extremes(self):
        assert self.index.min_key() == (self.model.keys()[0] if self.model else None)
        assert self.index.max_key() == (self.model.keys()[-1] if self.model else None)
        for end in (0, -1):
            if self.model:
                assert self.index.peekitem(end) == self.model.peekitem(end)
            else:
                with pytest.raises(IndexError):
                    self.index.peekitem(end)

    @rule(data=st.data())
    def navigation(self, data):
        """floor/ceiling/lower/higher_key of keys, of bounds between keys and of bounds outside them."""
        key = self.bound(data)
        if key is None:
            key = self.pick(data)
        keys = self.model.keys()
        left, right = self.model.bisect_left(key), self.model.bisect_right(key)
        assert self.index.floor_key(key) == (keys[right - 1] if right else None)
        assert self.index.lower_key(key) == (keys[left - 1] if left else None)
        assert self.index.ceiling_key(key) == (keys[left] if left < len(keys) else None)
        assert self.index.higher_key(key) == (keys[right] if right < len(keys) else None)

    @rule(data=st.data(), lo_in=st.booleans(), hi_in=st.booleans(), reverse=st.booleans(), items=st.booleans())
    def irange(self, data, lo_in, hi_in, reverse, items):
        lo, hi = self.bound(data), self.bound(data)
        expect = list(self.model.irange(lo, hi, inclusive=(lo_in, hi_in), reverse=reverse))
        if items:
            got = list(self.index.irange_items(lo, hi, inclusive=(lo_in, hi_in), reverse=reverse))
            assert got == [(k, self.model[k]) for k in expect]
        else:
            assert list(self.index.irange(lo, hi, inclusive=(lo_in, hi_in), reverse=reverse)) == expect

    @rule(data=st.data())
    def views_follow_writes(self, data):
        """The views taken at build: len, order, reversed, O(log n) `in`, set operations."""
        keys, values, items = self.views
        assert len(keys) == len(values) == len(items) == len(self.model)
        assert list(keys) == list(self.model.keys()) and list(reversed(keys)) == list(reversed(self.model.keys()))
        assert list(values) == list(self.model.values())
        assert list(reversed(values)) == list(reversed(self.model.values()))
        assert list(reversed(items)) == list(reversed(self.model.items()))
        key = self.pick(data)
        assert (key in keys) == (key in self.model)
        assert ((key, self.model.get(key, 0)) in items) == (key in self.model)
        assert (key, "no such value") not in items
        probe = {key, self.pick(data)}
        assert keys & probe == set(self.model) & probe
        assert keys - probe == set(self.model) - probe
        assert keys == set(self.model) and items == set(self.model.items())

    @rule()
    def reversed_keys(self):
        assert list(reversed(self.index)) == list(reversed(self.model))

    @rule(data=st.data())
    def iterate_then_change(self, data):
        it = iter(self.index.items())
        if not self.model:
            assert list(it) == []
            return
        assert next(it) == self.model.peekitem(0)
        key = self.pick(data)
        self.index[key] = 1
        self.model[key] = 1
        try:
            next(it)
        except RuntimeError:
            pass
        else:
            raise AssertionError("iteration went on after the index changed")

    @invariant()
    def same_size(self):
        if self.index is not None:
            assert len(self.index) == len(self.model)

    @invariant()
    def structure_holds(self):
        """Every invariant of the native tree (nfl_check), after every step."""
        if self.index is not None:
            self.index._check()

    def teardown(self):
        """Every entry, in order, through items()."""
        if self.index is not None:
            assert list(self.index.items()) == list(self.model.items())
