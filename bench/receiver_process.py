"""A Raindrop receiver in its own process, so its work never competes with the code measured.

Run as ``python -m bench.receiver_process LATENCY_SECONDS``: prints the base URL, serves until
standard input closes.
"""

from __future__ import annotations

import sys

from segment_raindrop_tools.local.receiver import RaindropReceiver


def main() -> None:
    latency = float(sys.argv[1])
    with RaindropReceiver(latency=latency) as receiver:
        print(receiver.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
