"""`python -m zmqswarm.cli` == `zs`."""

from .entry import main

main()
