"""Serving load on loopback: dlpipe's server beside the seed notes' Flask endpoint, in one run.

    .venv/bin/python benchmarks/serving_load.py [--seconds 4] [--json out.json]

What is measured (every server on 127.0.0.1, a fresh free port each):
- single-row tabular predictions at 1, 8 and 32 concurrent keep-alive clients: requests/s, p50, p99;
- rows/s for 1,000-row requests;
- servers: ``dlpipe serve --workers 2``; the same with ``--batch-window-ms 2`` (micro-batching);
  the seed-style Flask app (``model.predict`` on a one-row DataFrame per request, Flask's threaded
  server, as the seed notes deploy it).

The load generator is one asyncio process speaking HTTP/1.1 over raw sockets (an HTTP client
library would cost more CPU than the servers it measures); it shares the 2 cores with the servers,
so the figures are a floor. Bounded: each level runs ``--seconds`` seconds or 20,000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MAX_REQUESTS = 20_000

FLASK_APP = """
import sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from flask import Flask, jsonify, request
import dlpipe as dl
model = dl.load_bundle(sys.argv[1])
app = Flask(__name__)

@app.route("/predict", methods=["POST"])
def predict():
    rows = request.get_json()["rows"]
    out = model.predict(pd.DataFrame(rows))          # model.predict per request, as in the seed notes
    return jsonify(out.to_dict("records"))

app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_bundle(folder: Path) -> tuple[Path, list[dict]]:
    import pandas as pd

    import dlpipe as dl

    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=(n, 8))
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)])
    frame["city"] = rng.choice(["Seoul", "Paris", "Lima", "Oslo"], n)
    frame["plan"] = rng.choice(["free", "pro", "team"], n)
    frame["y"] = np.where(x[:, 0] - x[:, 1] + (frame["plan"] == "pro") > 0, "yes", "no")
    run = dl.train(frame, "y", epochs=5, progress="quiet", out=folder / "run", checkpoint=False)
    rows = frame.drop(columns="y").head(1000).to_dict("records")
    return run.path / "bundle", rows


def start(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    body = b'{"rows": []}'
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[:4]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                if s.recv(100).startswith(b"HTTP/1."):
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _client(
    port: int,
    bodies: list[bytes],
    stop_at: float,
    lat: list[float],
    budget: list[int],
    errors: list[str] | None = None,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            try:
                keep = await asyncio.wait_for(_one(reader, writer, body), 30)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                if errors is None:
                    raise
                errors.append(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            lat.append(time.perf_counter() - t0)
            if not keep:  # an HTTP/1.0 server (Flask's): one connection per request
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> bool:
    """One request; returns whether the connection stays open."""
    writer.write(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = head[9:12]
    length: int | None = None
    chunked = False
    keep = head.startswith(b"HTTP/1.1")
    for line in head.split(b"\r\n"):
        low = line.lower()
        if low.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        elif low.startswith(b"transfer-encoding:") and b"chunked" in low:
            chunked = True
        elif low.startswith(b"connection:") and b"close" in low:
            keep = False
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # body until the server closes
        keep = False
    if status != b"200":
        raise RuntimeError(f"status {status!r}")
    return keep


def tree_cpu_seconds(root: int) -> float:
    """User+system CPU seconds of a process and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += [c for c, p in parents.items() if p == pid]
    return total


def load(
    port: int, bodies: list[bytes], clients: int, seconds: float, server_pid: int | None = None
) -> dict:
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    client0 = time.process_time()
    lat: list[float] = []
    errors: list[str] = []
    budget = [MAX_REQUESTS]

    async def run() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(_client(port, bodies, t0 + seconds, lat, budget, errors) for _ in range(clients))
        )
        return time.perf_counter() - t0

    wall = asyncio.run(run())
    ms = np.asarray(lat) * 1000
    out = {
        "clients": clients,
        "requests": len(lat),
        "errors": len(errors),
        "req_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }
    if server_pid and lat:
        # CPU per request does not depend on what else the machine runs (wall-clock figures do)
        out["server_cpu_ms_per_req"] = round(
            (tree_cpu_seconds(server_pid) - cpu0) * 1000 / len(lat), 3
        )
        out["client_cpu_ms_per_req"] = round((time.process_time() - client0) * 1000 / len(lat), 3)
    return out


def rows_per_s(port: int, body: bytes, n_rows: int, repeats: int = 10) -> dict:
    lat: list[float] = []
    budget = [repeats]

    async def run() -> None:
        await _client(port, [body], time.perf_counter() + 120, lat, budget)

    asyncio.run(run())
    med = float(np.median(lat))
    return {"rows": n_rows, "median_ms": round(med * 1000, 1), "rows_per_s": round(n_rows / med)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--only", help="run only the servers whose name contains this text (e.g. flask)"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dlpipe-serving-bench-"))
    bundle, rows = make_bundle(tmp)
    singles = [json.dumps({"rows": [r]}).encode() for r in rows[:200]]
    big = json.dumps({"rows": rows[:1000]}).encode()
    py = sys.executable
    servers = {
        "dlpipe (2 workers)": [py, "-m", "dlpipe", "serve", str(bundle), "--workers", "2"],
        "dlpipe (2 workers, --batch-window-ms 2)": [
            py,
            "-m",
            "dlpipe",
            "serve",
            str(bundle),
            "--workers",
            "2",
            "--batch-window-ms",
            "2",
        ],
        "seed-style Flask (model.predict per request)": [
            py,
            str(tmp / "flask_app.py"),
            str(bundle),
        ],
    }
    (tmp / "flask_app.py").write_text(FLASK_APP)
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg(),
        },
        "servers": {},
    }
    for name, cmd in servers.items():
        if args.only and args.only.lower() not in name.lower():
            continue
        port = free_port()
        full = [*cmd, "--port", str(port)] if "dlpipe" in name else [*cmd, str(port)]
        proc = start(full, port)
        try:
            load(port, singles, 8, 1.0)  # warm-up
            levels = [load(port, singles, c, args.seconds, proc.pid) for c in (1, 8, 32)]
            big_res = rows_per_s(port, big, 1000)
        finally:
            stop(proc)
        results["servers"][name] = {"single_row": levels, "batch_1000": big_res}
        print(f"\n{name}")
        print(
            f"  {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'server CPU ms/req':>18} {'client CPU ms/req':>18}"
        )
        for lv in levels:
            print(
                f"  {lv['clients']:>7} {lv['req_per_s']:>9.1f} {lv['p50_ms']:>8.2f} {lv['p99_ms']:>8.2f}"
                f" {lv.get('server_cpu_ms_per_req', float('nan')):>18.3f} {lv.get('client_cpu_ms_per_req', float('nan')):>18.3f}"
            )
        print(
            f"  1,000-row request: median {big_res['median_ms']} ms, {big_res['rows_per_s']:,} rows/s"
        )
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    if len(results["servers"]) == len(servers):
        d = results["servers"]["dlpipe (2 workers)"]["single_row"][1]["req_per_s"]
        f = results["servers"]["seed-style Flask (model.predict per request)"]["single_row"][1][
            "req_per_s"
        ]
        print(f"\nat 8 clients: dlpipe {d:.0f} req/s vs Flask {f:.0f} req/s ({d / f:.1f}x)")
    print(
        f"load average (1, 5, 15 min) at start {results['machine']['load_avg_at_start']}, at end {results['machine']['load_avg_at_end']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
