"""Serving load on loopback: dlpipe's server beside Flask deployments, in interleaved rounds.

    .venv/bin/python benchmarks/serving_load.py [--seconds 4] [--rounds 3] [--json out.json]

What is measured (every server on 127.0.0.1, a fresh free port each):
- single-row tabular predictions at 1, 8 and 32 concurrent keep-alive clients: requests/s, p50, p99;
- rows/s for 1,000-row requests;
- servers:
  - ``dlpipe serve --workers 2`` (uvicorn, torch at 1 thread per worker); the same with
    ``--batch-window-ms 2`` (micro-batching);
  - Flask under gunicorn, 2 workers, torch at 1 thread, keep-alive (``-k gthread --threads 4
    --keep-alive 5``; gunicorn's default sync worker closes every connection), two apps:
    ``model.predict`` on a one-row DataFrame per request (the seed notes' endpoint), and the same
    encoder path dlpipe's server runs (``RowEncoder`` validate + encode, the range flags, one
    eval-mode forward pass, the task's decode), so the web stack is the only difference;
  - the seed notes' deployment: the first app on Flask's threaded development server in one
    process, torch threads unpinned, HTTP/1.0 (a new connection per request).

Protocol: every server is started once and warmed up; then ``--rounds`` rounds, each running every
server's levels in turn (interleaved, so a change in the machine's load hits all of them alike);
the median over rounds with the range. The load average is recorded at the start, after each
round and at the end. The load generator is one asyncio process speaking HTTP/1.1 over raw sockets
(an HTTP client library would cost more CPU than the servers it measures); it shares the 2 cores
with the servers, so the figures are a floor. Bounded: each level runs ``--seconds`` seconds or
20,000 requests.
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

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[2]), threaded=True)
"""

# The same app for gunicorn: the bundle from the environment, torch at one thread per worker.
FLASK_GUNICORN_APP = """
import os, warnings
warnings.simplefilter("ignore")
import pandas as pd
import torch
from flask import Flask, jsonify, request
import dlpipe as dl
torch.set_num_threads(1)
model = dl.load_bundle(os.environ["BENCH_BUNDLE"])
app = Flask(__name__)

@app.route("/predict", methods=["POST"])
def predict():
    rows = request.get_json()["rows"]
    out = model.predict(pd.DataFrame(rows))
    return jsonify(out.to_dict("records"))
"""

# Flask calling the path dlpipe's /predict runs for a table (serving/app.py): validate and encode the
# rows without pandas, flag values far outside training, one forward pass, decode, the same JSON.
FLASK_ENCODER_APP = """
import json, os, warnings
warnings.simplefilter("ignore")
import numpy as np
import torch
from flask import Flask, Response, request
import dlpipe as dl
from dlpipe.data.ranges import flag_rows, summarize_flags
from dlpipe.serving.rows import RowEncoder
torch.set_num_threads(1)
b = dl.load_bundle(os.environ["BENCH_BUNDLE"])
encoder = RowEncoder(b.preprocessor)
reference = b.manifest.get("reference_statistics") or {}
model = b.model.eval()
classes = [c.item() if hasattr(c, "item") else c for c in b.classes]
app = Flask(__name__)

@app.route("/predict", methods=["POST"])
def predict():
    rows = encoder.validate(request.get_json()["rows"])
    notes = []
    inputs = encoder.encode(rows, notes)
    notes.extend(summarize_flags(flag_rows({n: [r.get(n) for r in rows] for n in encoder.names}, reference, len(rows))))
    with torch.inference_mode():
        out = model(*(torch.from_numpy(a) for a in inputs)).float().numpy()
    labels, proba = b.task.decode(out)
    answer = {"predictions": [{"prediction": v, "probabilities": dict(zip(classes, p))}
                              for v, p in zip(labels.tolist(), proba.tolist())]}
    if notes:
        answer["warnings"] = notes
    return Response(json.dumps(answer), mimetype="application/json")
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


def launch(cmd: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    err = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (the child holds it)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)


def wait_ready(proc: subprocess.Popen, port: int, what: str, timeout: float = 1200) -> None:
    """Until the server answers a request (imports take minutes on a busy machine)."""
    deadline = time.monotonic() + timeout
    body = b'{"rows": []}'
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body)
                )
                if s.recv(100).startswith(b"HTTP/1."):
                    return
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


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


SEED_DEPLOYMENT = "the seed notes' deployment (Flask dev server, model.predict per request)"
GUNICORN_PREDICT = "Flask + gunicorn, 2 workers, model.predict per request"
GUNICORN_ENCODER = "Flask + gunicorn, 2 workers, dlpipe's encoder path"
DLPIPE = "dlpipe serve, 2 workers"


def servers(py: str, bundle: Path, tmp: Path) -> dict[str, tuple[list[str], dict | None]]:
    """name -> (command without the port, environment); the port is added by ``command``."""
    (tmp / "flask_app.py").write_text(FLASK_APP)
    (tmp / "flask_gunicorn.py").write_text(FLASK_GUNICORN_APP)
    (tmp / "flask_encoder.py").write_text(FLASK_ENCODER_APP)
    env = {**os.environ, "BENCH_BUNDLE": str(bundle)}
    gunicorn = [py, "-m", "gunicorn", "--chdir", str(tmp), "-w", "2", "-k", "gthread"]
    gunicorn += ["--threads", "4", "--keep-alive", "5", "--log-level", "warning"]
    serve = [py, "-m", "dlpipe", "serve", str(bundle), "--workers", "2"]
    return {
        DLPIPE: (serve, None),
        "dlpipe serve, 2 workers, --batch-window-ms 2": ([*serve, "--batch-window-ms", "2"], None),
        GUNICORN_ENCODER: ([*gunicorn, "flask_encoder:app"], env),
        GUNICORN_PREDICT: ([*gunicorn, "flask_gunicorn:app"], env),
        SEED_DEPLOYMENT: ([py, str(tmp / "flask_app.py"), str(bundle)], None),
    }


def command(name: str, cmd: list[str], port: int) -> list[str]:
    if name.startswith("dlpipe"):
        return [*cmd, "--port", str(port)]
    if "gunicorn" in name:
        return [*cmd[:-1], "-b", f"127.0.0.1:{port}", cmd[-1]]
    return [*cmd, str(port)]


def _median_range(values: list[float]) -> tuple[float, float, float]:
    return float(np.median(values)), min(values), max(values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--only", help="run only the servers whose name contains this text (e.g. flask)"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dlpipe-serving-bench-"))
    bundle, rows = make_bundle(tmp)
    singles = [json.dumps({"rows": [r]}).encode() for r in rows[:200]]
    big = json.dumps({"rows": rows[:1000]}).encode()
    chosen = {
        k: v
        for k, v in servers(sys.executable, bundle, tmp).items()
        if not args.only or args.only.lower() in k.lower()
    }
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg(),
            "load_avg_after_round": [],
        },
        "protocol": f"{args.rounds} interleaved rounds, {args.seconds} s per level",
        "servers": {k: {"rounds": []} for k in chosen},
    }
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for name, (cmd, env) in chosen.items():  # started together: their imports overlap
            port = free_port()
            log = tmp / f"server-{len(procs)}.log"
            procs[name] = (launch(command(name, cmd, port), env, log), port)
        for name, (proc, port) in procs.items():
            wait_ready(proc, port, f"{name} (stderr: {tmp})")
            load(port, singles, 8, 1.0)  # warm-up
        for r in range(args.rounds):
            for name, (proc, port) in procs.items():
                levels = [load(port, singles, c, args.seconds, proc.pid) for c in (1, 8, 32)]
                big_res = rows_per_s(port, big, 1000)
                results["servers"][name]["rounds"].append(
                    {"single_row": levels, "batch_1000": big_res}
                )
            results["machine"]["load_avg_after_round"].append(os.getloadavg())
            print(f"round {r + 1}/{args.rounds} done, load average {os.getloadavg()}", flush=True)
    finally:
        for proc, _ in procs.values():
            stop(proc)
    results["machine"]["load_avg_at_end"] = os.getloadavg()

    print(
        f"\nmedian over {args.rounds} interleaved rounds (range over rounds); single-row requests"
    )
    print(
        f"  {'server':<70} {'clients':>7} {'req/s':>7} {'range':>13} {'p50 ms':>7} {'p99 ms':>7}"
        f" {'srv CPU ms/req':>14}"
    )
    summary: dict = {}
    for name, res in results["servers"].items():
        summary[name] = {}
        for i, clients in enumerate((1, 8, 32)):
            lv = [rd["single_row"][i] for rd in res["rounds"]]
            rps = _median_range([x["req_per_s"] for x in lv])
            p50 = float(np.median([x["p50_ms"] for x in lv]))
            p99 = float(np.median([x["p99_ms"] for x in lv]))
            cpu = float(np.median([x.get("server_cpu_ms_per_req", np.nan) for x in lv]))
            summary[name][clients] = {"req_per_s": rps, "p50_ms": p50, "p99_ms": p99, "cpu": cpu}
            print(
                f"  {name:<70} {clients:>7} {rps[0]:>7.0f} {f'{rps[1]:.0f}-{rps[2]:.0f}':>13}"
                f" {p50:>7.2f} {p99:>7.2f} {cpu:>14.3f}"
            )
        big_rates = _median_range([rd["batch_1000"]["rows_per_s"] for rd in res["rounds"]])
        summary[name]["rows_per_s_1000"] = big_rates
        print(
            f"  {name:<70} 1,000-row requests: {big_rates[0]:,.0f} rows/s"
            f" ({big_rates[1]:,.0f}-{big_rates[2]:,.0f})"
        )
    results["summary"] = summary
    if DLPIPE in summary:
        for other in (GUNICORN_ENCODER, GUNICORN_PREDICT, SEED_DEPLOYMENT):
            if other not in summary:
                continue
            for clients in (8, 32):
                per_round = [
                    a["single_row"][(1, 8, 32).index(clients)]["req_per_s"]
                    / b["single_row"][(1, 8, 32).index(clients)]["req_per_s"]
                    for a, b in zip(
                        results["servers"][DLPIPE]["rounds"], results["servers"][other]["rounds"]
                    )
                ]
                med, lo, hi = _median_range(per_round)
                print(
                    f"at {clients} clients: dlpipe / {other}: {med:.2f}x (rounds {lo:.2f}-{hi:.2f}x)"
                )
            per_round = [
                a["batch_1000"]["rows_per_s"] / b["batch_1000"]["rows_per_s"]
                for a, b in zip(
                    results["servers"][DLPIPE]["rounds"], results["servers"][other]["rounds"]
                )
            ]
            med, lo, hi = _median_range(per_round)
            print(f"1,000-row requests: dlpipe / {other}: {med:.2f}x (rounds {lo:.2f}-{hi:.2f}x)")
    print(
        f"load average (1, 5, 15 min) at start {results['machine']['load_avg_at_start']},"
        f" at end {results['machine']['load_avg_at_end']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
