"""`python -m bench.peers.profile`: where a zmqswarm message's CPU goes, per process. One
1to1 64 B closed-loop run (``send()``, journal off unless --variant says) with every
process under cProfile (which slows Python calls, so read the shares, not the times); for
the sender, the router and the recipient, the functions that took the most time of their
own, and what share of that process's profiled time they are."""

from __future__ import annotations

import argparse
import glob
import io
import os
import pstats
import tempfile

from zmqswarm.bench.spec import PROFILE, Spec
from zmqswarm.bench.workload import run


def top(path: str, n: int) -> list[tuple[float, str]]:
    stats = pstats.Stats(path, stream=io.StringIO())
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in rows.values()) or 1.0
    ranked = sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    out = []
    for (file, line, func), (_, _, tt, _, _) in ranked:
        where = os.path.basename(file) if file != "~" else ""
        out.append((tt / total, f"{where}:{line} {func}" if where else func))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--variant", default="", help="zmqswarm variant: journal, batch")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    where = tempfile.mkdtemp(prefix="zs-bench-profile-")
    os.environ[PROFILE] = where  # the workers and the router are spawned after this
    r = run(Spec(system="bench.peers.zmqswarm", variant=args.variant, count=args.count))
    by_role = r["cpu_us_per_msg_by_role"]
    print(f"{r['msgs_per_s']:,.0f} msg/s under cProfile; CPU us/msg {by_role}")
    for name in ("send", "router", "recv"):
        for path in sorted(glob.glob(f"{where}/{name}*.prof")):
            print(f"\n{name} ({os.path.basename(path)}): share of its profiled time")
            for share, what in top(path, args.top):
                print(f"  {share:6.1%}  {what}")


if __name__ == "__main__":
    main()
