"""Views of an Index's keys, values and items, as dict's views are.

A view holds its index, not a copy: it sees every later change, its len()
is the index's, and iterating it reads the tree in key order in chunks
(RuntimeError if the index changes meanwhile).  `in` is one O(log n) lookup
on keys and items views; the keys and items views are sets
(collections.abc.Set operations return plain Python sets).
"""
import collections.abc

_ABSENT = object()


class KeysView(collections.abc.KeysView):
    """The keys of an Index, ascending."""

    __slots__ = ()

    def __contains__(self, key):
        """Whether key is in the index; False for anything the key dtype cannot hold.

        Raises nothing.  Cost: O(log n) (one lookup)."""
        return key in self._mapping

    def __iter__(self):
        """The keys, ascending.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per key (chunked native reads)."""
        return iter(self._mapping)

    def __reversed__(self):
        """The keys, descending.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per key (chunked native reads)."""
        return reversed(self._mapping)


class ItemsView(collections.abc.ItemsView):
    """The (key, value) pairs of an Index, in ascending key order."""

    __slots__ = ()

    def __contains__(self, item):
        """Whether item is a (key, value) pair of the index; False for anything else.

        Raises nothing of its own (== of the values may).  Cost: O(log n) (two lookups)."""
        try:
            key, value = item
        except (TypeError, ValueError):
            return False
        if key not in self._mapping:  # also False for a key the dtype cannot hold
            return False
        found = self._mapping.get(key, _ABSENT)
        return found is not _ABSENT and found == value

    def __iter__(self):
        """The (key, value) pairs, ascending by key.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per pair (chunked native reads)."""
        return self._mapping._iter_items()

    def __reversed__(self):
        """The (key, value) pairs, descending by key.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per pair (chunked native reads)."""
        return self._mapping._iter_items(reverse=True)


class ValuesView(collections.abc.ValuesView):
    """The values of an Index, in ascending key order; `in` is a linear scan, as dict's."""

    __slots__ = ()

    def __iter__(self):
        """The values, in ascending key order.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per value (chunked native reads)."""
        return self._mapping._iter_values()

    def __reversed__(self):
        """The values, in descending key order.

        Raises RuntimeError if the index changes while it runs.  Cost: O(1) per value (chunked native reads)."""
        return self._mapping._iter_values(reverse=True)
