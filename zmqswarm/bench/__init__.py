"""End-to-end workloads for `zs bench` and `python -m bench.peers`: senders and recipients in
processes of their own, every message checked (once, in order per pair) and the CPU of every
process counted. ``workload`` runs them against any system; ``zs`` is zmqswarm's."""
