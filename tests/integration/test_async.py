"""AsyncClient against a real router process: the asyncio driver of the same engine."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from zmqswarm import AsyncClient

from ..conftest import Procs


def test_async_clients_exchange_everything_once_in_order_across_a_router_restart(
    procs: Procs,
) -> None:
    router = procs.router()
    total = 5000

    async def main() -> None:
        nonlocal router
        async with (
            AsyncClient("alice", router=procs.url) as alice,
            AsyncClient("bob", router=procs.url) as bob,
        ):
            got: list[bytes] = []

            async def receive() -> None:
                while len(got) < total:
                    got.append((await bob.recv(timeout=30)).payload)

            receiver = asyncio.create_task(receive())
            tickets = []
            for i in range(total):
                tickets.append(alice.send("bob", f"{i}".encode(), notify=i == total - 1))
                if i == total // 2:
                    await tickets[-1].wait("accepted", timeout=10)
                    router.send_signal(signal.SIGTERM)  # mid-stream: the sender must resend
                    assert router.wait(10) == 0
                    router = procs.router()
                if i % 500 == 0:
                    await asyncio.sleep(0)  # let the engine run now and then
            await tickets[-1].wait("delivered", timeout=60)
            await asyncio.wait_for(receiver, 60)
            assert got == [f"{i}".encode() for i in range(total)]
            assert await alice.close(timeout=10) == []

    asyncio.run(main())


def test_async_ack_notes_and_holds_reach_the_sender(procs: Procs) -> None:
    procs.router()

    async def main() -> None:
        async with (
            AsyncClient("alice", router=procs.url) as alice,
            AsyncClient("bob", router=procs.url, auto_ack=False) as bob,
        ):
            ticket = alice.send("bob", b"do it", notify=True)
            msg = await bob.recv(timeout=10)
            msg.hold("busy: compiling")
            for _ in range(200):
                if ticket.progress:
                    break
                await asyncio.sleep(0.01)  # polling interval of a deadline wait
            assert ticket.progress == "busy: compiling"
            acked = asyncio.get_running_loop().time()
            msg.ack("done in 3 s")
            assert (await ticket.wait("delivered", timeout=10)).note == "done in 3 s"
            # The ack runs no turn of its own but arms the timer for ack_delay (2 ms): were
            # it left to the next heartbeat timer, this would take up to 0.5 s.
            assert asyncio.get_running_loop().time() - acked < 0.25

    asyncio.run(main())


def test_async_peer_state_reaches_zs_peers(procs: Procs) -> None:
    from zmqswarm.observe.query import list_peers

    procs.router()

    async def main() -> None:
        async with AsyncClient("bob", router=procs.url) as bob:
            bob.set_state("reviewing PR 12")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:
                peers = await asyncio.to_thread(list_peers, procs.url, timeout=5)
                if [p.state for p in peers if p.name == "bob"] == ["reviewing PR 12"]:
                    break
                assert loop.time() < deadline, peers
                await asyncio.sleep(0.02)  # poll interval of a deadline wait

    asyncio.run(main())


def test_async_recv_waits_leave_nothing_behind_and_close_ends_them(tmp_path: Path) -> None:
    from zmqswarm import ClientClosedError, ZsTimeoutError

    async def main() -> None:
        client = AsyncClient("idle", router=f"ipc://{tmp_path}/no-router")
        async with client:
            for _ in range(50):  # an idle agent polls like this, forever
                with pytest.raises(ZsTimeoutError):
                    await client.recv(timeout=0.001)
            assert client._readers == []  # bounded: timed-out waits are not kept
            waiting = asyncio.ensure_future(client.recv(timeout=30))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not client._readers:
                assert loop.time() < deadline
                await asyncio.sleep(0.001)  # poll interval of a deadline wait
            await client.close(timeout=0)
            with pytest.raises(ClientClosedError):  # at once, not after its 30 s
                await asyncio.wait_for(waiting, 2)

    asyncio.run(main())


def test_async_recv_times_out_on_time_when_another_timer_comes_first(tmp_path: Path) -> None:
    """A recv() timeout rides on the client's one timer. When that timer is set for
    something sooner (here the turn that comes every 0.5 s while no router answers), the
    turn it brings must re-arm for the waiting reader, not for its own next deadline."""
    from zmqswarm import ZsTimeoutError

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with AsyncClient("late", router=f"ipc://{tmp_path}/no-router") as client:
            start = loop.time()
            with pytest.raises(ZsTimeoutError):
                await client.recv(timeout=0.6)
            elapsed = loop.time() - start
            # Without the re-arm it comes at the turn after next, ~1.0 s: 0.3 s of slack
            # for a loaded machine, and still a clear miss.
            assert 0.6 <= elapsed < 0.9, elapsed

    asyncio.run(main())


def test_a_send_leaves_before_the_task_yields_and_a_burst_is_still_batched(
    procs: Procs,
) -> None:
    import threading

    from zmqswarm import Client

    procs.router()
    got = threading.Event()

    def receive(bob: Client) -> None:
        while bob.recv(timeout=30).payload != b"now":
            pass
        got.set()

    async def main() -> None:
        with Client("bob", router=procs.url) as bob:
            reader = threading.Thread(target=receive, args=(bob,))
            reader.start()
            async with AsyncClient("alice", router=procs.url) as alice:
                await alice.send("bob", b"warm-up").wait("accepted")
                deadline = asyncio.get_running_loop().time() + 5
                while alice._turn_due or alice._corked:  # quiet: no turn coming, no cork
                    assert asyncio.get_running_loop().time() < deadline
                    await asyncio.sleep(0)
                alice.send("bob", b"now")
                # The loop is blocked here: only a send made inside send() itself can
                # reach bob. (A blocking wait in a coroutine, on purpose.)
                assert got.wait(5), "send() waited for the event loop"
                core = alice._engine.core
                before = core.send_frames
                tickets = [alice.send("bob", b"%d" % i) for i in range(500)]
                await tickets[-1].wait("accepted")
                # The first of the burst goes at once, the rest in one turn's batch
                # (a batch holds up to MAX_BATCH): not one frame per send().
                assert core.send_frames - before <= 4
            reader.join(10)

    asyncio.run(main())


def test_a_backlog_reaches_readers_a_turns_worth_at_a_time(procs: Procs) -> None:
    """Mail waiting in the router arrives as a window's worth of Deliver frames at once. The
    loop hands readers a turn's worth before it feeds more: a turn that fed everything made
    them, and the acks that bring the next deliveries, wait for the whole window."""
    from zmqswarm import Client

    procs.router()
    total = 8192
    with Client("alice", router=procs.url) as alice:
        alice.send_many("bob", [b"%d" % i for i in range(total)])[-1].wait("accepted", timeout=30)

    async def main() -> None:
        async with AsyncClient("bob", router=procs.url) as bob:
            first = await bob.recv(timeout=30)
            engine = bob._engine
            assert len(engine.inbox) < engine.turn_messages  # not the whole backlog at once
            got = [first.payload] + [(await bob.recv(timeout=30)).payload for _ in range(total - 1)]
            assert got == [b"%d" % i for i in range(total)]

    asyncio.run(main())
