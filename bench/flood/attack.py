#!/usr/bin/python3
"""One attack of the flood benchmark, in a process of its own, so that its hundreds of
client threads and its busy socket loop never delay the measuring process's clocks.

    attack.py herd KEY USER PORT SOURCE CLIENTS DEADLINE_S PAUSE_S
    attack.py stall|storm PORT RATE_PER_S MAX_OPEN FIRST_SOURCE COUNT

Runs until its standard input closes (the benchmark closes it, or dies), then prints one
JSON object with its counts and exits. Standard library only.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402


def main(argv):
    mode = argv[0]
    if mode == "herd":
        key, user, port, source, clients, deadline_s, pause_s = argv[1:]
        attack = load.Herd(key, user, int(port), source, int(clients), float(deadline_s),
                           float(pause_s))
    else:
        port, rate, max_open, first, count = argv[1:]
        prefix, last = first.rsplit(".", 1)
        sources = [f"{prefix}.{int(last) + i}" for i in range(int(count))]
        attack = load.SocketFlood(mode, int(port), sources, int(rate), int(max_open))
    attack.start()
    sys.stdin.read()  # until the benchmark closes it
    attack.stop()
    counts = {k: getattr(attack, k) for k in ("attempts", "served", "opened", "connected",
                                              "closed_by_server", "failed", "peak_open")
              if hasattr(attack, k)}
    counts["connections"] = attack.connections()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
