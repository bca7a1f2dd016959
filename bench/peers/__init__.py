"""zmqswarm against its peers, one workload at a time, every system in the same run: see
``python -m bench.peers --help``. One module per system, each the shape that
``zmqswarm.bench.spec`` describes (``broker``, ``prepare``, ``Sender``, ``Recipient``)."""
