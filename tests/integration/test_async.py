"""AsyncClient against a real router process: the asyncio driver of the same engine."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from zmqswarm import AsyncClient
from zmqswarm.protocol import Send

from ..helpers import FakeRouter, Procs, backlog


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
                tickets.append(await alice.send("bob", f"{i}".encode(), notify=i == total - 1))
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
            ticket = await alice.send("bob", b"do it", notify=True)
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
            # The ack runs no turn of its own but arms the timer for ack_delay (2 ms).
            assert asyncio.get_running_loop().time() - acked < 0.25

    asyncio.run(main())


def test_a_message_after_a_silence_reaches_a_waiting_recv_at_once(procs: Procs) -> None:
    """bob's lease on his session lapses while nothing comes (it lasts half the router's
    liveness timeout): the message that ends the silence is handed over one round trip
    later, not when bob's waiting recv() times out (zs agent's writers wait in 1 s recvs)."""
    procs.router()

    async def main() -> None:
        async with (
            AsyncClient("alice", router=procs.url) as alice,
            AsyncClient("bob", router=procs.url) as bob,
        ):
            await (await alice.send("bob", b"first")).wait("accepted", timeout=10)
            assert (await bob.recv(timeout=10)).payload == b"first"
            loop = asyncio.get_running_loop()
            waiting = asyncio.ensure_future(bob.recv(timeout=30))
            await asyncio.sleep(1.5)  # the fault: a silence longer than bob's lease, not a sync
            sent = loop.time()
            await alice.send("bob", b"second")
            msg = await asyncio.wait_for(waiting, 10)
            assert msg.payload == b"second"
            assert loop.time() - sent < 0.5, f"handed over after {loop.time() - sent:.2f} s"

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
    import tracemalloc

    from zmqswarm import ClientClosedError, ZsTimeoutError

    async def main() -> None:
        client = AsyncClient("idle", router=f"ipc://{tmp_path}/no-router")
        async with client:
            for _ in range(100):  # warm up: caches, the loop's own structures
                with pytest.raises(ZsTimeoutError):
                    await client.recv(timeout=0.0005)
            tracemalloc.start()
            before = tracemalloc.take_snapshot()
            for _ in range(1000):  # an idle agent polls like this, forever
                with pytest.raises(ZsTimeoutError):
                    await client.recv(timeout=0.0005)
            grown = tracemalloc.take_snapshot().compare_to(before, "filename")
            tracemalloc.stop()
            mine = sum(d.size_diff for d in grown if "zmqswarm" in str(d.traceback))
            assert mine < 16_000, f"{mine} bytes kept by 1000 timed-out waits"
            waiting = asyncio.ensure_future(client.recv(timeout=30))
            await asyncio.sleep(0)  # the task runs until it waits
            assert not waiting.done()
            await client.close(timeout=0)
            with pytest.raises(ClientClosedError):  # at once, not after its 30 s
                await asyncio.wait_for(waiting, 2)

    asyncio.run(main())


@pytest.mark.solo
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
    tmp_path: Path,
) -> None:
    """Against a router played by a raw ROUTER socket in this test, counting what reaches
    the wire: a lone send() is on it before the coroutine yields; a burst of 500 sends made
    without yielding goes out in a few frames, not one frame a send."""
    router = FakeRouter(tmp_path)

    async def main() -> None:
        async with AsyncClient("alice", router=router.url) as alice:
            await asyncio.sleep(0)  # the start-up turn sends the Hello
            router.welcome("alice", alice.epoch)
            await alice.wait_ready(5)
            for _ in range(3):
                await asyncio.sleep(0)  # let the turns after the Welcome run out
            await alice.send("bob", b"now")
            # No await that yields since: only a send made inside send() itself is here.
            sent = router.frames(2000)
            assert [type(f) for f in sent] == [Send] and sent[0].items[0].seq == 1  # type: ignore[attr-defined]
            for i in range(500):
                await alice.send("bob", b"%d" % i)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            burst = router.frames(2000)
            items = sum(len(f.items) for f in burst if isinstance(f, Send))
            assert items == 500 and len(burst) <= 4, [len(f.items) for f in burst]  # type: ignore[attr-defined]
            await alice.close(timeout=0)  # nobody receipts: nothing to wait for

    try:
        asyncio.run(main())
    finally:
        router.close()


def test_a_batch_leaves_as_one_frame_when_its_block_ends(tmp_path: Path) -> None:
    """Inside ``batch()`` sends to several recipients gather; the block's end sends them in
    one frame, before the coroutine yields."""
    router = FakeRouter(tmp_path)

    async def main() -> None:
        async with AsyncClient("alice", router=router.url) as alice:
            await asyncio.sleep(0)
            router.welcome("alice", alice.epoch)
            await alice.wait_ready(5)
            for _ in range(3):
                await asyncio.sleep(0)
            with alice.batch():
                for i in range(30):
                    await alice.send(f"bob{i % 3}", b"%d" % i)
                await alice.send_many("carol", [b"a", b"b"])
                assert router.frames(100) == []  # gathered, not sent
            await asyncio.sleep(0)  # if a turn was already due, the batch leaves in it
            await asyncio.sleep(0)
            (frame,) = router.frames(2000)
            assert isinstance(frame, Send)
            assert [item.to for item in frame.items] == [f"bob{i % 3}" for i in range(30)] + [
                "carol",
                "carol",
            ]
            await alice.close(timeout=0)

    try:
        asyncio.run(main())
    finally:
        router.close()


def test_recv_many_takes_a_backlog_in_bursts(procs: Procs) -> None:
    procs.router()
    total = 300
    sent = backlog(procs.url, "bob", total)

    async def main() -> None:
        async with AsyncClient("bob", router=procs.url) as bob:
            got: list[bytes] = []
            calls = 0
            while len(got) < total:
                msgs = await bob.recv_many(limit=64, timeout=10)
                assert 1 <= len(msgs) <= 64
                got += [m.payload for m in msgs]
                calls += 1
            assert got == sent
            assert calls < total / 2

    asyncio.run(main())


def test_a_backlog_of_a_whole_credit_window_arrives_in_order(procs: Procs) -> None:
    """Mail waiting in the router arrives as a window's worth of Deliver frames at once."""
    procs.router()
    total = 8192
    sent = backlog(procs.url, "bob", total)

    async def main() -> None:
        async with AsyncClient("bob", router=procs.url) as bob:
            got = [(await bob.recv(timeout=30)).payload for _ in range(total)]
            assert got == sent

    asyncio.run(main())
