"""`zs send`: one message, from an agent's tool call or a script. Agents call it all the
time, so it never imports typer: cli/entry.py parses it with ``params.parse(PARAMS, ...)``,
and cli/main.py builds the typer command from the same PARAMS.

With a spool (``--spool``, ``--flush``, or a spool an earlier ``--spool`` left for the same
sender name) the message is on disk before it is sent: when the router does not answer, it
stays there (exit 7), and the next ``zs send`` or ``zs send --flush`` from that name delivers
it, under the same stream, so never twice."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING

from .common import CONFIG, ROUTER, SECURITY, as_json, check_name, keys, reaching, target, timeout
from .exits import FAILED, SPOOLED, UNREACHABLE, USAGE, exit_codes, fail
from .params import argument, option

if TYPE_CHECKING:
    from zmqswarm.client.sync import Client
    from zmqswarm.keys import ClientKeys
    from zmqswarm.protocol import ClientOptions

WAITS = ("none", "accepted", "delivered")
SPOOL_NAME = "zs-send"  # the sender name of a spooled send that names none: a lasting one

PARAMS = (
    argument(
        "to",
        "Recipient name (none with --flush).",
        metavar="TO",
        required=False,
    ),
    argument(
        "message",
        "Text to send; '-' or none: read it from stdin.",
        metavar="MESSAGE",
        required=False,
    ),
    ROUTER,
    option(
        "sender",
        "--from",
        "-f",
        metavar="NAME",
        help="Sender name (default: $ZS_NAME, else the agent of the tmux pane it runs in,"
        " else zs-send-PID).",
    ),
    option(
        "wait",
        "--wait",
        choices=WAITS,
        default="accepted",
        help="Exit once the message is sent (none), in the router's hands (accepted) or"
        " acked by the recipient (delivered).",
    ),
    timeout(10.0, "Seconds to wait for it."),
    option(
        "allow_empty",
        "--allow-empty",
        type=bool,
        default=False,
        help="Send an empty message (refused otherwise).",
    ),
    as_json("Print a JSON object."),
    option(
        "spool",
        "--spool",
        type=bool,
        default=False,
        help="Keep the message in the sender's spool ($XDG_STATE_HOME/zmqswarm/spool/NAME)"
        " until the router has it: if the router does not answer, exit 7 with it kept; the next"
        " `zs send` or `zs send --flush` from the same name delivers it.",
    ),
    option(
        "flush",
        "--flush",
        type=bool,
        default=False,
        help="Deliver what the sender's spool keeps (TO and MESSAGE are then optional); print"
        " each delivered ticket.",
    ),
    *SECURITY,
    CONFIG,
)


def run(
    *,
    to: str | None,
    message: str | None,
    router: str | None,
    sender: str | None,
    wait: str,
    timeout: float,
    allow_empty: bool,
    as_json: bool,
    spool: bool,
    flush: bool,
    curve_secret: str | None,
    router_key: str | None,
    config: str | None,
) -> None:
    """Send one message; print its ticket. With --flush, deliver what the spool keeps."""
    import msgspec

    from zmqswarm.config import load_config

    if to is None and not flush:
        raise fail(USAGE, "missing TO: zs send [OPTIONS] TO [MESSAGE] (or zs send --flush)")
    if to is not None:
        check_name("recipient", to)
    spooled = spool or flush
    default = SPOOL_NAME if spooled else f"zs-send-{os.getpid()}"
    name = sender or os.environ.get("ZS_NAME") or pane_agent() or default
    check_name("sender", name)
    path = spool_path(name)
    spooled = spooled or os.path.exists(path)  # an earlier --spool left one: it goes first
    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        payload = read_message(message) if to is not None else b""
        if to is not None and not payload and not allow_empty:
            raise fail(USAGE, "empty message: nothing sent (--allow-empty sends it anyway)")
        limit = cfg.router.max_payload  # what a router with the same config takes
        if len(payload) > limit:
            raise fail(
                FAILED,
                f"message of {len(payload)} bytes is over the {limit}-byte limit (max_payload):"
                " raise max-payload in the [router] table of the config file that both"
                " `zs router --config` and `zs send --config` read",
            )
        # Send-only: the name may be a live agent's (a reply from inside its pane).
        options = msgspec.structs.replace(cfg.client.options(), send_only=True, max_payload=limit)
        if spooled:
            with reaching(where):
                spool_send(
                    name, to, payload, where.url, options, path, wait, timeout, as_json, curve
                )
            return
        from zmqswarm.client.sync import Client
        from zmqswarm.errors import DeliveryError, ZsTimeoutError

        assert to is not None
        with reaching(where):
            client = Client(name, router=where.url, options=options, curve=curve)
            linger = timeout  # close() waits for the receipt: exiting earlier can lose it
            try:
                ticket = client.send(to, payload, notify=wait == "delivered")
                if wait != "none":
                    ticket.wait("delivered" if wait == "delivered" else "accepted", timeout)
            except ZsTimeoutError:
                linger = 0
                why = ticket.progress if wait == "delivered" else ""  # the recipient's word
                if wait == "delivered" and not client.close(timeout=0):
                    late = f"{ticket} accepted, not delivered within {timeout} s"
                    raise fail(UNREACHABLE, f"{late}: {why}" if why else late) from None
                raise no_answer(where.url, timeout) from None
            except DeliveryError as exc:
                if exc.code != "too_large":
                    raise
                where_to = "the router's limit is max-payload in the [router] table of its config"
                raise DeliveryError(exc.ticket, exc.code, f"{exc.reason}: {where_to}") from None
            finally:
                unsent = client.close(timeout=linger)
            if unsent:
                raise no_answer(where.url, timeout)
    if as_json:
        state = "sent" if wait == "none" else wait
        sys.stdout.write(json.dumps({"ticket": str(ticket), "to": to, "state": state}) + "\n")
    else:
        sys.stdout.write(f"{ticket}\n")


def spool_send(
    name: str,
    to: str | None,
    payload: bytes,
    url: str,
    options: ClientOptions,
    path: str,
    wait: str,
    timeout: float,
    as_json: bool,
    curve: ClientKeys | None = None,
) -> None:
    """Send (if ``to``) through the spool at ``path``, after what it already keeps; what the
    router has not receipted within ``timeout`` stays there (exit 7)."""
    from zmqswarm.errors import ZsTimeoutError

    client = open_spooled(name, url, options, path, timeout, curve)
    earlier, ticket = client.resumed, None
    try:
        if to is not None:
            ticket = client.send(to, payload, notify=wait == "delivered")
            if wait != "none":
                ticket.wait("delivered" if wait == "delivered" else "accepted", timeout)
        kept = client.close(timeout=timeout)
    except ZsTimeoutError:
        assert ticket is not None
        if ticket.state == "pending":
            kept = client.close(timeout=0)
        else:  # accepted: out of the spool, at the router, not yet delivered
            why = ticket.progress
            late = f"{ticket} accepted, not delivered within {timeout} s"
            raise fail(UNREACHABLE, f"{late}: {why}" if why else late) from None
    finally:
        client.close(timeout=0)  # when something else went wrong: the spool keeps it
    if kept:
        count = len(kept)
        raise fail(
            SPOOLED,
            f"router at {url} did not answer within {timeout} s: {count} message"
            f"{'s' if count > 1 else ''} kept in {path}; the next `zs send --from {name}` or"
            f" `zs send --flush --from {name}` delivers {'them' if count > 1 else 'it'}",
        )
    if ticket is not None and earlier:
        sys.stderr.write(f"zs: also delivered {len(earlier)} kept in {path}\n")
    for t in [ticket] if ticket is not None else earlier:
        if not as_json:
            sys.stdout.write(f"{t}\n")
        elif t is ticket:
            state = "sent" if wait == "none" else wait
            sys.stdout.write(json.dumps({"ticket": str(t), "to": to, "state": state}) + "\n")
        else:
            sys.stdout.write(json.dumps({"ticket": str(t), "state": "accepted"}) + "\n")


def open_spooled(
    name: str,
    url: str,
    options: ClientOptions,
    path: str,
    timeout: float,
    curve: ClientKeys | None = None,
) -> Client:
    """The client on ``path``, waiting up to ``timeout`` for another `zs send` of the same
    name to let go of it (agents run several at once)."""
    from zmqswarm.client.sync import Client
    from zmqswarm.errors import StoreInUseError
    from zmqswarm.private import private_dir

    private_dir(os.path.dirname(path))  # always ours (spool_path): 0700, its parents too
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(name, router=url, options=options, spool=path, curve=curve)
        except StoreInUseError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)  # its holder is sending: a few ms, or its timeout at most


def spool_path(name: str) -> str:
    """Where `zs send` keeps the spool of sender ``name``."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state, "zmqswarm", "spool", name.replace("/", "%2F"))


def no_answer(url: str, timeout: float) -> Exception:
    from zmqswarm.errors import RouterUnavailableError

    return RouterUnavailableError(f"router at {url} did not answer within {timeout} s", url=url)


def read_message(message: str | None) -> bytes:
    if message not in (None, "-"):
        return message.encode()
    if sys.stdin.isatty():  # someone typing, not a pipe: say what is awaited
        sys.stderr.write("zs: reading the message from stdin (Ctrl-D to send)\n")
        sys.stderr.flush()
    return sys.stdin.buffer.read()


def pane_agent() -> str | None:
    """Inside a tmux pane tagged ``@zs_agent=<name>`` (``zs agent tag``): that name, so an
    agent's ``zs send`` replies come from it. One tmux call (~2 ms), only inside tmux."""
    pane = os.environ.get("TMUX_PANE")
    if not pane or not os.environ.get("TMUX"):
        return None
    import subprocess

    try:
        done = subprocess.run(
            ["tmux", "display-message", "-p", "-t", pane, "#{@zs_agent}"],
            capture_output=True, text=True, timeout=2,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None
