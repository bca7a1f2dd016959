"""``zs agent``: delivers messages into tmux panes. ``gateway`` speaks tmux control mode,
``panes`` watches them, ``screen`` reads what a pane shows, ``paste`` puts one message in
(checked and recorded in the pane), ``delivery`` and ``window`` carry one message from its
receipt to its outcome, ``intents`` keeps a crash from pasting twice, ``profiles`` read each
program's screen, ``writer`` serves one name, ``service`` ties them to the router."""

from __future__ import annotations

from .service import Agent, run_agent

__all__ = ["Agent", "run_agent"]
