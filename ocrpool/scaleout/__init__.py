"""Scale out on Ray: the same batch run and API across many machines.

One Ray actor per node (or per ``actors``) hosts a local ``OcrPool``, so recycling,
spares, timeouts and quarantine work as on one machine; the driver dispatches inputs to
the actors and is the one writer of the output. Needs ``pip install 'ocrpool[ray]'``;
importing this package does not import Ray.
"""

from ocrpool.scaleout.errors import (
    ActorLost,
    ActorsNotReady,
    RayNotInstalled,
    RayUnavailable,
    ScaleOutError,
)
from ocrpool.scaleout.pool import RayOcrPool
from ocrpool.scaleout.stats import ACTOR_LOST, ActorInfo, ActorState

__all__ = [
    "ACTOR_LOST",
    "ActorInfo",
    "ActorLost",
    "ActorState",
    "ActorsNotReady",
    "RayNotInstalled",
    "RayOcrPool",
    "RayUnavailable",
    "ScaleOutError",
]
