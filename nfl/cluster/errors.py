"""What nfl.cluster raises, and the Ray errors that mean a shard's actor is gone."""
import ray


class ShardUnavailableError(RuntimeError):
    """A shard's actor died (or is restarting) while it ran a call; its part may or may not be applied.

    Also raised by every call of a sharded index whose router is out of
    service (a shard died during a split or merge and did not come back).
    """


DEAD = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
