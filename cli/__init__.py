"""zmqswarm command line: `zs`."""
