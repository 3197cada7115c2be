"""A/B in the same minute: 50 creates to ACTIVE with and without TaskFlow flow
persistence ([database] persist_flows), two runs each, over HTTP; prints JSON.

Usage: .venv/bin/python bench/persistence_ab.py
"""
import os
import sys, tempfile, time, statistics, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_bench as b, requests
out = {}
for label, extra in (("persisted", ""), ("not_persisted", "[database]\npersist_flows = false\n")) * 2:
    with tempfile.TemporaryDirectory() as state:
        port = b.free_port(); proc, _ = b.start_service(state, port, extra)
        base = f"http://127.0.0.1:{port}"
        try:
            s = requests.Session(); img = b.default_image(state)
            t0 = time.perf_counter(); ids = b.create_servers(s, base, img, 50); b.wait_active(s, base, ids)
            out.setdefault(label, []).append(round(time.perf_counter() - t0, 3))
        finally:
            b.stop_service(proc)
print(json.dumps(out))
