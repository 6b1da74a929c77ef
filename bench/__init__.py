"""``make bench``: how fast, how small and how cheap the forwarder is, measured in one run."""
