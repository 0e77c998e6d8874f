"""HTTP record saves through Dealflow against a bare Litestar echo, in one sitting.

    .venv/bin/python bench/http_save.py [--seconds 10] [--connections 8]

Needs `wrk` (Debian: `apt-get install wrk`). Starts, on 127.0.0.1, a uvicorn worker serving
bench/echo_app.py and one serving `dealflow serve` on a fresh SQLite file whose team has 20
deal workflows (the shipped probability ladder plus 11 others listening to record_saved).
Each is loaded by wrk for the same time with the same deal JSON: Dealflow's POST /api/v1/deals
commits the deal, its event and run, and evaluates the workflows. Prints requests/s, latency
percentiles and the ratio to the echo.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
BODY = {"title": "Initech portal", "amount": 24000, "currency": "EUR", "stage": "proposal",
        "custom": {"proposal_type": "firm", "relationship": "medium"}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def load(url: str, headers: dict[str, str], seconds: int, connections: int, workdir: Path) -> dict:
    script = workdir / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = dict(re.findall(r"\s(50|99)%\s+([\d.]+\w+)", out))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "p50": latency.get("50"), "p99": latency.get("99"),
            "non_2xx": int(errors.group(1)) if errors else 0}


def workflows() -> list[dict]:
    extra = [
        {"id": f"tag-{n}", "name": f"tag {n}", "entity": "deal", "trigger": {"type": "record_saved"},
         "condition": f"record.amount > `{n * 1000}` && record.status == 'open'",
         "actions": [{"type": "field_update", "set": {f"custom.band_{n}": "yes"}}]}
        for n in range(11)
    ]
    return extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # One key sends every request: its rate limit would measure 429s, not saves.
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
               "DEALFLOW_RATE_LIMIT_PER_SECOND": "0"}
        env.pop("REDIS_URL", None)
        subprocess.run([BIN / "dealflow", "migrate"], env=env, check=True, capture_output=True)
        created = subprocess.run([BIN / "dealflow", "team", "create", "Bench", "--starter"], env=env,
                                 check=True, capture_output=True, text=True).stdout
        key = re.search(r"dfk_[A-Za-z0-9_-]+", created).group(0)
        for document in workflows():
            path = work / f"{document['id']}.json"
            path.write_text(json.dumps(document))
        subprocess.run([BIN / "dealflow", "workflows", "import", "--team", "Bench", *work.glob("tag-*.json")],
                       env=env, check=True, capture_output=True)
        echo_port, app_port = free_port(), free_port()
        servers = [
            subprocess.Popen([BIN / "uvicorn", "--app-dir", str(HERE), "echo_app:app", "--port", str(echo_port),
                              "--log-level", "warning", "--no-access-log"], env=env),
            subprocess.Popen([BIN / "dealflow", "serve", "--port", str(app_port), "--log-level", "warning"], env=env),
        ]
        try:
            wait(f"http://127.0.0.1:{echo_port}/schema/openapi.json")
            wait(f"http://127.0.0.1:{app_port}/healthz")
            echo = load(f"http://127.0.0.1:{echo_port}/echo", {}, args.seconds, args.connections, work)
            save = load(f"http://127.0.0.1:{app_port}/api/v1/deals", {"Authorization": f"Bearer {key}"},
                        args.seconds, args.connections, work)
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
    print(f"{'endpoint':<34} {'req/s':>8} {'p50':>9} {'p99':>9} {'non-2xx':>8}")
    for name, r in (("litestar echo (parse + return)", echo), ("dealflow POST /deals, 20 workflows", save)):
        print(f"{name:<34} {r['rate']:>8,.0f} {r['p50']:>9} {r['p99']:>9} {r['non_2xx']:>8}")
    print(f"ratio save / echo: {save['rate'] / echo['rate']:.3f}")


if __name__ == "__main__":
    main()
