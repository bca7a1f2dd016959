"""`python -m bench.backlog`: a big backlog for offline recipients, and the router's memory.

One sender puts ``--n`` messages (64 B, default 1M) for ``--names`` recipients that are not
connected, all receipted; the router's resident memory (VmRSS, and its peak VmHWM) is read
as the backlog grows, after a restart on the same journal, and once every recipient has
drained its mailbox. The same run without a journal is the baseline: there everything waits
in memory.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._procs import CTX, endpoint, run_zs_router, wait_path, write_json

_MB = 1 << 20


def _memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def _router(url: str, data: str | None) -> Any:
    proc = CTX.Process(target=run_zs_router, args=(url, None, data))
    proc.start()
    wait_path(url)
    return proc


def _stop(proc: Any) -> None:
    proc.terminate()
    proc.join(30)


def run(n: int, names: int, data: str | None) -> dict[str, Any]:
    from zmqswarm.client.sync import Client

    url = endpoint("backlog")
    router = _router(url, data)
    row: dict[str, Any] = {"journal": data is not None, "n": n, "names": names}
    payload = [b"x" * 64] * 1000
    start = time.perf_counter()
    with Client("source", router=url) as client:
        for i in range(n // 1000):
            client.send_many(f"r{i % names}", payload)
            if (i + 1) * 1000 in (n // 10, n // 2):
                row[f"rss_mib_at_{(i + 1) * 1000}"] = _memory(router.pid)[0]
        assert client.close(timeout=600) == [], "messages never receipted"
    row["send_s"] = time.perf_counter() - start
    row["rss_mib_full"], row["hwm_mib_full"] = _memory(router.pid)
    if data is not None:  # a restart reads the journal back
        os.kill(router.pid, signal.SIGKILL)
        router.join(10)
        Path(url[len("ipc://") :]).unlink()  # so that waiting for it waits for the new one
        start = time.perf_counter()
        router = _router(url, data)
        row["restart_s"] = time.perf_counter() - start
        row["rss_mib_restarted"] = _memory(router.pid)[0]
    start = time.perf_counter()
    got = 0
    for r in range(names):
        with Client(f"r{r}", router=url) as client:
            for _ in range(n // names):
                client.recv(timeout=30)
                got += 1
    row["drain_s"] = time.perf_counter() - start
    row["rss_mib_drained"], row["hwm_mib_end"] = _memory(router.pid)
    assert got == n
    _stop(router)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--names", type=int, default=100)
    ap.add_argument("--json", default="bench/results/backlog.json")
    args = ap.parse_args()
    rows = []
    for journal in (False, True):
        data = tempfile.mkdtemp(prefix="zs-bench-backlog-") if journal else None
        try:
            rows.append(run(args.n, args.names, data))
        finally:
            if data:
                shutil.rmtree(data, ignore_errors=True)
    print(f"{args.n:,} messages of 64 B for {args.names} offline names; router memory, MiB")
    keys = [k for k in rows[1] if k.startswith(("rss", "hwm")) or k.endswith("_s")]
    print(f"  {'':<22}{'no journal':>12}{'journal':>12}")
    for key in keys:
        cells = "".join(f"{r[key]:>12.1f}" if key in r else f"{'-':>12}" for r in rows)
        print(f"  {key:<22}{cells}")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
