"""nfl.cluster: one logical nfl index over range shards, one Ray actor per shard.

    from nfl.cluster import ShardedIndex
    sidx = ShardedIndex.bulk_load(keys, values, shards=4)
    values, found = sidx.get_many(queries); sidx[k] = v; sidx.range(lo, hi)
    sidx = ShardedIndex.open(path)   # a durable one (bulk_load(..., path=path)) after its actors are gone

Needs Ray (pip install "nfl[cluster]"); `import nfl` never imports this.
"""
try:
    import ray  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('nfl.cluster needs Ray: pip install "nfl[cluster]"') from exc

from nfl.cluster.directory import ReconcileError
from nfl.cluster.sharded import ShardedIndex, ShardUnavailableError

__all__ = ["ShardedIndex", "ShardUnavailableError", "ReconcileError"]
