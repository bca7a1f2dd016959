"""The benches' histogram lives in the package now (``zs bench`` uses it): re-exported here."""

from zmqswarm.bench.hist import Histogram

__all__ = ["Histogram"]
