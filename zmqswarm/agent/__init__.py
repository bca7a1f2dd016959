"""``zs agent``: delivers messages into tmux panes. ``gateway`` speaks tmux control mode,
``panes`` watches them, ``paste`` puts one message in, ``intents`` keeps a crash from pasting
twice, ``profiles`` read each program's screen, ``service`` ties them to the router."""

from __future__ import annotations

from .service import Agent, run_agent

__all__ = ["Agent", "run_agent"]
