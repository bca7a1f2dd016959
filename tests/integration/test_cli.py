"""`zs` as a user runs it: real processes against a real router."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..helpers import Procs, wait_for

ZS = [sys.executable, "-m", "zmqswarm.cli"]
ENV = {k: v for k, v in os.environ.items() if k != "ZS_ROUTER"}


def zs(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZS, *args], input=stdin, capture_output=True, text=True, timeout=30, env=env or ENV
    )


class Ran:
    def __init__(self, argv: list[str], code: int, err: str, took: float) -> None:
        self.argv, self.code, self.err, self.took = argv, code, err, took


def zs_at_once(*runs: tuple[list[str], dict[str, str]]) -> list[Ran]:
    """Several `zs` commands side by side (each waits out its own timeout); their exit codes,
    stderr and how long each took."""
    start = time.monotonic()
    procs = [
        (argv, subprocess.Popen([*ZS, *argv], env={**ENV, **env}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        for argv, env in runs
    ]  # fmt: skip
    done = []
    for argv, proc in procs:
        _, err = proc.communicate(timeout=30)
        done.append(Ran(argv, proc.returncode, err, time.monotonic() - start))
    return done


def unreachable(url: str, timeout: float, source: str) -> str:
    return (
        f"zs: router at {url} did not answer within {timeout} s (URL from {source}): is"
        " `zs router` running there? Start one, or give its URL with --router or $ZS_ROUTER\n"
    )


def test_send_then_recv_round_trip(procs: Procs) -> None:
    procs.router()
    first = zs("send", "bob", "hello bob", "--router", procs.url)
    assert first.returncode == 0, first.stderr
    second = zs("send", "bob", "--router", procs.url, "--json", stdin="from stdin")
    assert json.loads(second.stdout)["state"] == "accepted"
    got = zs("recv", "bob", "--router", procs.url, "--count", "2", "--json", "--timeout", "10")
    lines = [json.loads(line) for line in got.stdout.splitlines()]
    assert [m["payload"] for m in lines] == ["hello bob", "from stdin"]
    assert lines[0]["ticket"] == first.stdout.strip()
    empty = zs("send", "bob", "", "--allow-empty", "--router", procs.url)
    assert empty.returncode == 0, empty.stderr
    got = zs("recv", "bob", "--router", procs.url, "--count", "1", "--json", "--timeout", "10")
    assert json.loads(got.stdout)["payload"] == ""


def test_commands_against_a_stopped_router_say_so_and_exit_3(procs: Procs) -> None:
    router = procs.router()
    router.terminate()
    router.wait(10)
    flags = ["--router", procs.url, "--timeout", "1"]
    runs = [["recv", "bob"], ["peers"], ["dead"], ["monitor", "--once"], ["send", "bob", "hi"]]
    for ran in zs_at_once(*[([*argv, *flags], {}) for argv in runs]):
        assert ran.code == 3, (ran.argv, ran.err)
        assert ran.err == unreachable(procs.url, 1.0, "--router"), ran.argv
        assert ran.took < 8, ran.argv  # its 1 s, then interpreter starts on a busy box


def test_recv_tells_a_router_that_went_away_from_no_mail(procs: Procs) -> None:
    router = procs.router()
    recv = procs.spawn("-m", "zmqswarm.cli", "recv", "bob", "--router", procs.url, "--timeout", "5")

    def bob_online() -> bool:
        return '"online": true' in zs("peers", "--router", procs.url, "--json").stdout

    wait_for(bob_online, 4, "bob's session")  # within recv's 5 s of quiet
    router.kill()
    _, err = recv.communicate(timeout=20)
    assert recv.returncode == 3, err
    assert err.startswith(f"zs: router at {procs.url} went away and did not come back within 5.0 s")


def test_recv_without_a_timeout_gives_up_on_a_router_within_a_bounded_default(
    tmp_path: Path,
) -> None:
    url = f"ipc://{tmp_path}/nobody"
    (ran,) = zs_at_once((["recv", "bob"], {"ZS_ROUTER": url}))
    assert ran.code == 3, ran.err
    assert ran.err == unreachable(url, 5.0, "$ZS_ROUTER")
    assert 5 <= ran.took < 12


def test_a_malformed_router_url_is_one_line_and_exit_6() -> None:
    commands = [["send", "bob", "hi"], ["recv", "bob"], ["peers"], ["dead"], ["monitor", "--once"]]
    runs: list[tuple[list[str], dict[str, str]]] = [
        ([*argv, "--router", "garbage"], {}) for argv in commands
    ]
    runs.append((["peers"], {"ZS_ROUTER": "tcp://"}))
    for ran in zs_at_once(*runs):
        url, source = (
            ("tcp://", "$ZS_ROUTER") if "garbage" not in ran.argv else ("garbage", "--router")
        )
        assert ran.code == 6, (ran.argv, ran.err)
        assert ran.err.startswith(f"zs: cannot connect to {url!r}: Invalid argument"), ran.argv
        assert ran.err.endswith(
            f" (URL from {source}): a router URL looks like ipc:///path/to/socket"
            " or tcp://host:port\n"
        ), ran.argv
        assert ran.err.count("\n") == 1, ran.err


def test_zs_send_to_nothing_says_which_url_it_tried_where_it_came_from_and_what_to_do(
    tmp_path: Path,
) -> None:
    nothing = "tcp://127.0.0.1:1"  # nothing listens on port 1
    config = tmp_path / "zs.toml"
    config.write_text(f'[client]\nrouter = "{nothing}"\n')
    send = ["send", "bob", "hi", "--timeout", "1"]
    runs = [
        ([*send, "--router", nothing], {}),
        (send, {"ZS_ROUTER": nothing}),
        ([*send, "--config", str(config)], {}),
        (send, {"XDG_RUNTIME_DIR": str(tmp_path)}),
    ]
    default = f"ipc://{tmp_path}/zmqswarm-{os.getuid()}/router"
    expected = [
        (nothing, "--router"),
        (nothing, "$ZS_ROUTER"),
        (nothing, f"[client] router in {config}"),
        (default, "the default (no --router, $ZS_ROUTER or config)"),
    ]
    for ran, (url, source) in zip(zs_at_once(*runs), expected, strict=True):
        assert ran.code == 3, ran.err
        assert ran.err == unreachable(url, 1.0, source)


def test_zs_send_at_a_terminal_says_it_reads_stdin(procs: Procs) -> None:
    procs.router()
    terminal, pane = pty.openpty()
    send = subprocess.Popen(
        [*ZS, "send", "bob", "--router", procs.url],
        stdin=pane, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    os.close(pane)
    try:
        assert send.stderr is not None
        assert select.select([send.stderr], [], [], 20)[0], "no word from zs send"
        assert send.stderr.readline() == "zs: reading the message from stdin (Ctrl-D to send)\n"
        os.write(terminal, b"typed by hand\n\x04")  # Ctrl-D at a line's start: end of input
        out, err = send.communicate(timeout=20)
        assert send.returncode == 0, err
    finally:
        os.close(terminal)
    got = zs("recv", "bob", "--router", procs.url, "--count", "1", "--json", "--timeout", "10")
    assert json.loads(got.stdout)["payload"] == "typed by hand\n"


def test_max_payload_is_raised_where_the_error_says(procs: Procs) -> None:
    config = procs.tmp / "zs.toml"
    config.write_text("[router]\nmax-payload = 3000000\n")
    procs.router("--config", str(config))
    big = "x" * 2_000_000
    refused = zs("send", "bob", "--router", procs.url, stdin=big)
    assert refused.returncode == 4
    assert "max-payload in the [router] table" in refused.stderr
    sent = zs("send", "bob", "--router", procs.url, "--config", str(config), stdin=big)
    assert sent.returncode == 0, sent.stderr
    got = zs("recv", "bob", "--router", procs.url, "--count", "1", "--json", "--timeout", "10")
    assert json.loads(got.stdout)["payload"] == big


def test_a_message_the_router_refuses_as_too_large_exits_4_saying_where_its_limit_is(
    procs: Procs,
) -> None:
    config = procs.tmp / "router.toml"
    config.write_text("[router]\nmax-payload = 1000\n")
    procs.router("--config", str(config))
    refused = zs("send", "bob", "--router", procs.url, stdin="x" * 2000)
    assert refused.returncode == 4, refused.stderr
    assert refused.stderr.startswith("zs: ticket ")
    assert refused.stderr.endswith(
        ": too_large: 2000 bytes > 1000: the router's limit is max-payload in the [router]"
        " table of its config\n"
    )


def test_zs_peers_with_nobody_known_says_so(procs: Procs) -> None:
    procs.router()
    listed = zs("peers", "--router", procs.url)
    assert (listed.returncode, listed.stdout) == (0, f"no peers known to {procs.url}\n")
    assert zs("peers", "--router", procs.url, "--json").stdout == ""


def test_the_router_logs_start_and_stop_at_info_in_one_format(procs: Procs) -> None:
    router = procs.router()
    router.send_signal(signal.SIGTERM)
    _, err = router.communicate(timeout=20)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    start, *_, stop = err.splitlines()
    assert re.fullmatch(
        rf"{stamp} INFO zmqswarm\.router: zs router listening on {re.escape(procs.url)}, .*", start
    )
    assert re.fullmatch(rf"{stamp} INFO zmqswarm\.router: zs router stopped: \{{.*\}}", stop)
    url = f"ipc://{procs.tmp}/quiet"
    quiet = procs.spawn("-m", "zmqswarm.cli", "router", "--bind", url, "-q")
    wait_for(Path(url[len("ipc://") :]).exists, 10, "the quiet router's socket")
    assert zs("send", "bob", "hi", "--router", url).returncode == 0  # it is serving
    quiet.send_signal(signal.SIGTERM)
    assert quiet.communicate(timeout=20) == ("", "")  # -q: routine lines stay out


def test_unreachable_router_is_one_line_and_exit_3_within_the_timeout(tmp_path: Path) -> None:
    start = time.monotonic()
    result = zs("send", "bob", "hi", "--router", f"ipc://{tmp_path}/nobody", "--timeout", "1")
    assert result.returncode == 3
    assert "did not answer within 1.0 s" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line: no log line beside it
    assert time.monotonic() - start < 10  # 1 s wait + interpreter start, never 2 x timeout


def test_a_second_router_on_a_live_endpoint_exits_5(procs: Procs) -> None:
    procs.router()
    result = zs("router", "--bind", procs.url)
    assert result.returncode == 5
    assert "already serving" in result.stderr


def _cpus_allowed(pid: int) -> set[str]:
    """Cpus_allowed_list of every thread of ``pid``."""
    lists = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                lists.add(line.split()[1])
    return lists


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sched_setaffinity is Linux's")
def test_zs_router_pins_itself_and_its_io_thread_from_the_config(procs: Procs) -> None:
    import os

    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: a pinned thread looks like any other")
    cpu = max(allowed)
    config = procs.tmp / "router.toml"
    config.write_text(f"[router]\ncpus = [{cpu}]\n")
    router = procs.router("--config", str(config))
    threads = len(list(Path(f"/proc/{router.pid}/task").iterdir()))
    assert threads >= 2  # the loop and libzmq's I/O thread, which must be pinned too
    assert _cpus_allowed(router.pid) == {str(cpu)}
    assert zs("send", "bob", "hi", "--router", procs.url).returncode == 0  # and it serves


def test_zs_router_refuses_a_cpu_it_may_not_use(tmp_path: Path) -> None:
    result = zs("router", "--bind", f"ipc://{tmp_path}/r", "--cpu", "100000")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("zs: cannot pin to CPUs [100000]: this process may use")
    assert not (tmp_path / "r").exists()  # refused before binding anything


def test_a_crashed_routers_endpoint_is_taken_over(procs: Procs) -> None:
    first = procs.router()
    first.kill()  # SIGKILL: lock released by the kernel, socket file left behind
    first.wait(10)
    procs.router()
    assert zs("send", "bob", "hi", "--router", procs.url).returncode == 0


def test_zs_send_may_use_a_live_peer_s_name(procs: Procs) -> None:
    """`zs send --from bob` while bob is connected (an agent replying from its own pane):
    send-only, so not refused as NAME_TAKEN, and alice sees it came from bob."""
    from zmqswarm import Client

    procs.router()
    with Client("bob", router=procs.url), Client("alice", router=procs.url) as alice:
        sent = zs("send", "alice", "done", "--from", "bob", "--router", procs.url)
        assert sent.returncode == 0, sent.stderr
        msg = alice.recv(timeout=10)
        assert (msg.sender, msg.text) == ("bob", "done")


def test_zs_dead_lists_and_drops_what_the_router_gave_up_on(procs: Procs) -> None:
    from zmqswarm import Client, DeliveryError

    procs.router()
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("nobody", b"too late \xff", notify=True, ttl=0.2)  # never read
        with pytest.raises(DeliveryError) as failed:
            ticket.wait("delivered", timeout=10)
        assert failed.value.code == "expired"
    listed = zs("dead", "--router", procs.url, "--json")
    assert listed.returncode == 0, listed.stderr
    (line,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert (line["to"], line["ticket"], line["reason"]) == ("nobody", str(ticket.id), "expired")
    assert (line["payload"], line["encoding"]) == ("dG9vIGxhdGUg/w==", "base64")
    assert zs("dead", "--router", procs.url, "--drop-upto", str(line["id"])).returncode == 0
    wait_for(lambda: zs("dead", "--router", procs.url, "--json").stdout == "", 5, "the drop")
    bad = zs("dead", "--router", procs.url, "--limit", "0")
    assert bad.returncode == 2 and "--limit" in bad.stderr


def test_zs_peers_shows_who_is_online_and_what_waits_for_whom(procs: Procs) -> None:
    from zmqswarm import Client

    procs.router()
    with Client("bob", router=procs.url) as bob, Client("alice", router=procs.url) as alice:
        bob.set_state("reviewing PR 12")
        for _ in range(3):
            alice.send("carol", b"for later").wait("accepted", timeout=10)  # carol: offline

        def shown() -> bool:
            return "reviewing PR 12" in zs("peers", "--router", procs.url).stdout

        wait_for(shown, 10, "the state in zs peers")
        listed = zs("peers", "--router", procs.url, "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rows["bob"]["state"] == "reviewing PR 12"
    assert set(rows) == {"alice", "bob", "carol"}  # zs peers' own send-only session: not shown
    assert rows["bob"]["online"] and rows["alice"]["online"]
    assert (rows["carol"]["online"], rows["carol"]["queued"]) == (False, 3)
    assert rows["carol"]["waiting_ms"] > 0 and rows["bob"]["waiting_ms"] == 0
    header, *lines = zs("peers", "--router", procs.url).stdout.splitlines()
    assert header.split() == ["NAME", "SEEN", "QUEUED", "INFLIGHT", "OLDEST", "STATE", "DOING"]
    carol = next(line.split() for line in lines if line.startswith("carol "))
    assert carol[:4] == ["carol", "offline", "3", "0"] and carol[4].endswith("s")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="zs agent runs tmux")
def test_the_agent_logs_in_the_routers_format(procs: Procs) -> None:
    """No tmux server on this socket name (none is started): the agent serves, complains
    in the one format, and its stop line comes out in that format too."""
    socket = f"zs-cli-absent-{os.getpid()}"
    agent = procs.spawn("-m", "zmqswarm.cli", "agent", "--name", "bob", "-L", socket,
                        "--router", f"ipc://{procs.tmp}/router")  # fmt: skip
    assert agent.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while not any("INFO zmqswarm.agent: serving bob in the pane" in line for line in lines):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([agent.stderr], [], [], left)[0], lines
        lines.append(agent.stderr.readline().rstrip("\n"))
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=20)
    lines += err.splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ zmqswarm\.agent: "
    assert all(re.match(stamp, line) for line in lines), lines
    assert "INFO zmqswarm.agent: zs agent stopped: 0 delivered" in lines[-1]  # routine: INFO


def test_send_waiting_for_delivery_says_why_it_was_not_delivered(procs: Procs) -> None:
    """A recipient holds the message (a tmux agent says why its pane cannot take it): the
    sender's `--wait delivered` times out with exit 3 and the recipient's own words."""
    from zmqswarm import Client

    procs.router()
    with Client("bob", router=procs.url, auto_ack=False) as bob:
        bob.wait_ready(10)
        argv = ["send", "bob", "do it", "--router", procs.url, "--wait", "delivered"]
        sender = subprocess.Popen(
            [*ZS, *argv, "--timeout", "3"], env=ENV, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        msg = bob.recv(timeout=10)
        msg.hold("refused_draft: a draft is typed: 'git sta'")
        _, err = sender.communicate(timeout=30)
    assert sender.returncode == 3
    assert re.fullmatch(
        r"zs: \S+ accepted, not delivered within 3\.0 s: refused_draft: a draft is typed:"
        r" 'git sta'\n",
        err,
    ), err


def test_zs_send_spool_keeps_what_a_down_router_missed_and_flush_delivers_it_once(
    procs: Procs, tmp_path: Path
) -> None:
    from zmqswarm import Client
    from zmqswarm.observe import list_peers

    env = {**ENV, "XDG_STATE_HOME": str(tmp_path / "state"), "ZS_ROUTER": procs.url}
    path = tmp_path / "state" / "zmqswarm" / "spool" / "runner"
    send = ["send", "bob", "--from", "runner", "--timeout", "1"]
    down = zs(*send, "built", "--spool", env=env)
    assert (down.returncode, down.stdout) == (7, ""), down.stderr
    assert down.stderr == (
        f"zs: router at {procs.url} did not answer within 1.0 s: 1 message kept in {path};"
        " the next `zs send --from runner` or `zs send --flush --from runner` delivers it\n"
    )
    still = zs(*send, "tested", env=env)  # no --spool: the name's spool is there, so used
    assert still.returncode == 7 and "2 messages kept in" in still.stderr, still.stderr
    procs.router()
    flushed = zs("send", "--flush", "--from", "runner", env=env)
    assert flushed.returncode == 0, flushed.stderr
    tickets = flushed.stdout.split()
    assert [t.rsplit("/", 1)[1] for t in tickets] == ["1", "2"]  # one stream, in order
    assert len({t.rsplit("/", 1)[0] for t in tickets}) == 1
    again = zs("send", "--flush", "--from", "runner", env=env)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")  # nothing left
    (bob,) = list_peers(procs.url)
    assert (bob.name, bob.queued) == ("bob", 2)  # in the mailbox once each
    with Client("bob", router=procs.url) as client:
        got = [client.recv(timeout=10) for _ in range(2)]
    assert [m.text for m in got] == ["built", "tested"]
    assert [str(m.ticket) for m in got] == tickets
    last = zs(*send, "shipped", env=env)  # the spool is empty, but still this name's
    assert last.returncode == 0, last.stderr
    assert last.stdout.strip().rsplit("/", 1)[1] == "3"


def test_two_spooled_zs_sends_of_one_name_take_turns(procs: Procs, tmp_path: Path) -> None:
    procs.router()
    env = {**ENV, "XDG_STATE_HOME": str(tmp_path), "ZS_ROUTER": procs.url}
    runs = [(["send", "bob", f"m{i}", "--spool", "--from", "runner"], env) for i in range(4)]
    done = zs_at_once(*runs)
    assert [r.code for r in done] == [0, 0, 0, 0], [r.err for r in done]
