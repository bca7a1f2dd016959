"""``zs router``: the poll loop (``loop``) that drives the sans-IO routing core."""

from __future__ import annotations

from .loop import Router, pin_to_cpus

__all__ = ["Router", "pin_to_cpus"]
