"""zmqswarm: its system module lives in the package, where `zs bench` runs it too."""

from zmqswarm.bench.zs import NAME, VARIANTS, Idle, Recipient, Sender, broker, prepare

__all__ = ["NAME", "VARIANTS", "Idle", "Recipient", "Sender", "broker", "prepare"]
