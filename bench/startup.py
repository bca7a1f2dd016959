"""`python -m bench.startup`: wall time of `zs send` to a running router against
`python -c "import zmq, msgspec"`, interleaved run by run so both see the same noise.

zmqswarm's modules are byte-compiled first, as `pip install` does for an installed package:
an editable install in an environment with PYTHONDONTWRITEBYTECODE set (this sandbox sets
it) never caches bytecode, and `zs send` would compile every module it imports on every run
(measured here: 1.52-1.81x the baseline that way, 1.31-1.38x compiled)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

from bench._procs import endpoint, wait_path, write_json


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compile_package() -> None:
    """Cache zmqswarm's bytecode, as an installed package has it (zmq and msgspec, the
    baseline's imports, come as installed wheels and have theirs)."""
    import compileall

    import zmqswarm
    import zmqswarm.cli

    for pkg in (zmqswarm, zmqswarm.cli):  # cli/ is mapped to zmqswarm.cli: its own dir
        compileall.compile_dir(os.path.dirname(pkg.__file__ or ""), quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", default="bench/results/startup.json")
    args = ap.parse_args()
    compile_package()
    url = endpoint("startup")
    env = {**os.environ, "ZS_ROUTER": url}
    zs = shutil.which("zs", path=os.path.dirname(sys.executable)) or "zs"
    router = subprocess.Popen([zs, "router"], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_path(url)
        base_cmd = [sys.executable, "-c", "import zmq, msgspec"]
        send_cmd = [zs, "send", "bob", "hello"]
        wall(send_cmd, env)  # warm the page cache
        base, send = [], []
        for _ in range(args.runs):
            base.append(wall(base_cmd, env))
            send.append(wall(send_cmd, env))
    finally:
        router.terminate()
        router.wait(10)
    b, s = statistics.median(base), statistics.median(send)
    print(f"{'command':<36} {'median ms':>10} {'p90 ms':>8}")
    for label, xs in (("python -c 'import zmq, msgspec'", base), ("zs send bob hello", send)):
        p90 = sorted(xs)[int(len(xs) * 0.9)]
        print(f"{label:<36} {statistics.median(xs) * 1000:>10.1f} {p90 * 1000:>8.1f}")
    print(f"ratio (medians): {s / b:.2f}x")
    write_json(args.json, {"baseline_s": base, "zs_send_s": send, "ratio": s / b})


if __name__ == "__main__":
    main()
