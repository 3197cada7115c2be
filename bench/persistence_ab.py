"""A/B in the same minute: 50 creates to ACTIVE with and without TaskFlow flow
persistence ([database] persist_flows), alternated, two runs each, over HTTP
on the fake driver; prints JSON.

Usage: .venv/bin/python bench/persistence_ab.py [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_bench  # noqa: E402

VARIANTS = {"persisted": "", "not_persisted": "[database]\npersist_flows = false\n"}


def one_run(extra_conf: str, servers: int = 50) -> float:
    with tempfile.TemporaryDirectory() as state:
        port = api_bench.free_port()
        proc, _ = api_bench.start_service(state, port, extra_conf)
        base = f"http://127.0.0.1:{port}"
        try:
            session = requests.Session()
            image = api_bench.default_image(state)
            t0 = time.perf_counter()
            ids = api_bench.create_servers(session, base, image, servers)
            api_bench.wait_active(session, base, ids)
            return round(time.perf_counter() - t0, 3)
        finally:
            api_bench.stop_service(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.runs):
        for name, extra in VARIANTS.items():
            results[name].append(one_run(extra))
    print(json.dumps({"benchmark": "create_50_persistence_ab", "seconds": results}, indent=2))


if __name__ == "__main__":
    main()
