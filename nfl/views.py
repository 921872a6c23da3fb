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
        return key in self._mapping

    def __iter__(self):
        return iter(self._mapping)

    def __reversed__(self):
        return reversed(self._mapping)


class ItemsView(collections.abc.ItemsView):
    """The (key, value) pairs of an Index, in ascending key order."""

    __slots__ = ()

    def __contains__(self, item):
        try:
            key, value = item
        except (TypeError, ValueError):
            return False
        if key not in self._mapping:  # also False for a key the dtype cannot hold
            return False
        found = self._mapping.get(key, _ABSENT)
        return found is not _ABSENT and found == value

    def __iter__(self):
        return self._mapping._iter_items()

    def __reversed__(self):
        return self._mapping._iter_items(reverse=True)


class ValuesView(collections.abc.ValuesView):
    """The values of an Index, in ascending key order; `in` is a linear scan, as dict's."""

    __slots__ = ()

    def __iter__(self):
        return self._mapping._iter_values()

    def __reversed__(self):
        return self._mapping._iter_values(reverse=True)
