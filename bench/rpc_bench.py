"""RPC round trip in one process, per in-process transport; prints JSON.

For each transport (default ``fake://`` and ``inproc://``), through the
``virtstack.rpc`` facade with a running RPC server: the time of a ``call``
to an endpoint that returns at once, and of a ``cast`` until the endpoint
runs. Transports alternate round by round so both see the same machine;
medians of N (default 200) each.

Usage: .venv/bin/python bench/rpc_bench.py [--rounds 200] [--transports fake:// inproc://]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")

import oslo_messaging as messaging  # noqa: E402

from virtstack import context, rpc  # noqa: E402
from virtstack.conf import CONF  # noqa: E402


class Endpoint:
    target = messaging.Target(version="1.0")

    def __init__(self) -> None:
        self.arrived = threading.Event()

    def echo(self, ctxt, value):
        return value

    def note(self, ctxt):
        self.arrived.set()


class Served:
    """A server on its own transport (one transport per URL, made here)."""

    def __init__(self, url: str):
        CONF.set_override("transport_url", url)
        rpc.cleanup()
        self.transport = rpc.get_transport()
        self.endpoint = Endpoint()
        self.server = rpc.get_server("rpc-bench", "bench", [self.endpoint])
        self.server.start()
        self.client = rpc.Client("rpc-bench")

    def call(self) -> float:
        t0 = time.perf_counter()
        self.client.call(context.get_admin_context(), "echo", server="bench", value=1)
        return time.perf_counter() - t0

    def cast(self) -> float:
        self.endpoint.arrived.clear()
        t0 = time.perf_counter()
        self.client.cast(context.get_admin_context(), "note", server="bench")
        if not self.endpoint.arrived.wait(30):
            raise SystemExit("cast never arrived")
        return time.perf_counter() - t0

    def stop(self) -> None:
        self.server.stop()
        self.server.wait()
        rpc.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--transports", nargs="+", default=["fake://", "inproc://"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        CONF([], project="virtstack", default_config_files=[])
        CONF.set_override("state_path", state)
        times: dict[str, dict[str, list[float]]] = {
            url: {"call": [], "cast": []} for url in args.transports}
        batch = 20  # rounds per transport before switching (a server per switch)
        done = 0
        while done < args.rounds:
            n = min(batch, args.rounds - done)
            for url in args.transports:
                served = Served(url)
                try:
                    served.call()  # warm up: first message on this transport
                    for _ in range(n):
                        times[url]["call"].append(served.call())
                        times[url]["cast"].append(served.cast())
                finally:
                    served.stop()
            done += n
    result = {"benchmark": "rpc_round_trip", "machine_cpus": os.cpu_count(),
              "rounds": args.rounds, "load_average": os.getloadavg()[0]}
    for url, kinds in times.items():
        result[url] = {f"{kind}_ms_median": round(statistics.median(ts) * 1000, 2)
                       for kind, ts in kinds.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
