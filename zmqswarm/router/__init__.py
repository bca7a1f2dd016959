"""``zs router``: the poll loop (``loop``) that drives the sans-IO routing core."""

from __future__ import annotations

from .endpoints import pin_to_cpus
from .loop import Router

__all__ = ["Router", "pin_to_cpus"]
