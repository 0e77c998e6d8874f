"""Record saves that fire side effects, embedded and at scale, counted at the receiving end.

    .venv/bin/python bench/durable.py [--seconds 10] [--connections 8] [--only embedded|scale]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--drain-timeout 600]

Needs `wrk` (Debian: `apt-get install wrk`), for the scale configuration `redis-server` and a
PostgreSQL server, and the sample plugin's `post_to` action (`make test` installs it).
Everything runs on 127.0.0.1, in a temporary directory, on fresh databases:

- a receiving server (``receiver`` below, a raw ASGI app under uvicorn) that answers every
  POST 200 and counts it by its Idempotency-Key;
- the echo of bench/echo_app.py, loaded first: the baseline the save rates are divided by;
- **embedded**: `dealflow serve` on a fresh SQLite file without REDIS_URL (its in-process
  worker performs the side effects);
- **at scale**: `dealflow serve` on a fresh PostgreSQL database (created on --postgres,
  dropped at the end) with REDIS_URL on a redis-server of its own, and two
  `dealflow worker --processes 1`.

The team has 20 deal workflows on record_saved (created), each with two `post_to` actions to
the receiver, so a save queues 40 executions. wrk posts deals for --seconds; then the script
waits (at most --drain-timeout) until no execution is unfinished, and checks that the
receiver got each execution's idempotency key exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_save import BIN, BODY, HERE, free_port, wait  # noqa: E402
from server.core.db import make_engine, normalize_url  # noqa: E402
from server.core.models import ActionExecution, Deal  # noqa: E402

WORKFLOWS = 20
ACTIONS_PER_WORKFLOW = 2
PER_SAVE = WORKFLOWS * ACTIONS_PER_WORKFLOW
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
UNFINISHED = ("pending", "queued", "running", "failed")


# --- the receiving server (run by uvicorn as `durable:receiver`) ---------------------------


class Tally:
    """Answers every POST 200 and counts it by its Idempotency-Key.

    ``GET /count``: how many POSTs, how many distinct keys, the wall-clock time of the last
    POST; ``GET /keys``: each key and how many times it came.
    """

    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.posts = 0
        self.last: float | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "POST":
            more = True
            while more:  # the whole body, as a real endpoint would read it
                more = (await receive()).get("more_body", False)
            key = dict(scope["headers"]).get(b"idempotency-key", b"").decode()
            self.keys[key] += 1
            self.posts += 1
            self.last = time.time()
            body = b"{}"
        elif scope["path"] == "/keys":
            body = json.dumps(self.keys).encode()
        else:
            body = json.dumps(
                {"posts": self.posts, "distinct": len(self.keys), "last": self.last}
            ).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


receiver = Tally()


# --- processes ------------------------------------------------------------------------------


class Process:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[Any], env: dict[str, str], work: Path) -> None:
        self.name = name
        self.log = work / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(c) for c in command], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cpu(self) -> float:
        """User + system CPU seconds so far, all threads (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def wait_for(check: Any, timeout: float, what: str, proc: Process) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.proc.poll() is None:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"gave up waiting for {what}\n--- {proc.name} ---\n{proc.output()[-3000:]}")


def uvicorn(name: str, app: str, env: dict[str, str], work: Path) -> tuple[Process, str]:
    port = free_port()
    command = [BIN / "uvicorn", "--app-dir", HERE, app, "--port", port, "--lifespan", "off",
               "--log-level", "warning", "--no-access-log"]
    proc = Process(name, command, env, work)
    return proc, f"http://127.0.0.1:{port}"


def redis_server(work: Path) -> tuple[Process, str]:
    """A redis-server of our own on a free port, nothing persisted (never the shared one)."""
    port = free_port()
    proc = Process("redis", ["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", work], dict(os.environ), work)
    wait_for(lambda: "Ready to accept connections" in proc.output(), 10, "redis-server",
             proc)
    return proc, f"redis://127.0.0.1:{port}/0"


# --- load -----------------------------------------------------------------------------------


def wrk(url: str, headers: dict[str, str], args: argparse.Namespace, work: Path) -> dict:
    """http_save.load, plus the request count and socket errors (a slow save may time out)."""
    script = work / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(json.dumps(BODY))}",
             'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s",
         "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=args.seconds + 60, check=True,
    ).stdout
    latency = dict(re.findall(r"\s(50|99)%\s+([\d.]+\w+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: (.*)", out)
    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50": latency.get("50"), "p99": latency.get("99"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": socket.group(1).strip() if socket else ""}


def workflows(url: str) -> list[dict]:
    return [
        {"id": f"push-{n}", "name": f"Push new deals {n}", "entity": "deal",
         "trigger": {"type": "record_saved", "on": ["created"]},
         "actions": [{"type": "post_to", "url": f"{url}/wf{n}/{a}"}
                     for a in range(ACTIONS_PER_WORKFLOW)]}
        for n in range(WORKFLOWS)
    ]


def require_post_to() -> None:
    from server.core.plugins import load_registry
    from server.settings import load_settings

    if "post_to" not in load_registry(load_settings().plugins_disable).actions:
        sys.exit("the `post_to` action is not registered: install the sample plugin "
                 "(.venv/bin/pip install -e tests/plugins/sample_plugin, or `make test`)")


# --- what the database says -----------------------------------------------------------------


def counts(db: Engine) -> dict:
    with db.connect() as conn:
        deals = conn.scalar(select(func.count()).select_from(Deal))
        statuses = Counter({(s, a): n for s, a, n in conn.execute(
            select(ActionExecution.status, ActionExecution.attempts, func.count())
            .group_by(ActionExecution.status, ActionExecution.attempts))})
    return {"deals": deals, "statuses": statuses, "executions": sum(statuses.values()),
            "unfinished": sum(n for (s, _), n in statuses.items() if s in UNFINISHED)}


def executions(db: Engine) -> tuple[set[str], set[str], list[float]]:
    """Every execution's idempotency key, those that succeeded, and the action's own time
    (ms, from the attempt log) of each that succeeded, sorted."""
    with db.connect() as conn:
        rows = conn.execute(select(ActionExecution.idempotency_key, ActionExecution.status,
                                   ActionExecution.attempt_log)).all()
    done = [(key, log) for key, status, log in rows if status == "succeeded"]
    return ({key for key, _, _ in rows}, {key for key, _ in done},
            sorted(log[-1]["duration_ms"] for _, log in done if log))


def drain(db: Engine, timeout: float) -> tuple[bool, dict]:
    """Wait until nothing is unfinished and no save is still arriving (a request wrk gave up
    on at the end may still commit); False if ``timeout`` came first."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        now = counts(db)
        if now["unfinished"] == 0 and previous is not None and now["deals"] == previous["deals"]:
            return True, now
        if time.monotonic() >= deadline:
            return False, now
        previous = now
        time.sleep(0.5)


# --- one configuration ----------------------------------------------------------------------


def prepare(env: dict[str, str], work: Path, sink: str) -> str:
    """Migrate, create the team, import the workflows; return the team's API key."""
    def dealflow(*command: Any) -> str:
        return subprocess.run([BIN / "dealflow", *command], env=env, check=True,
                              capture_output=True, text=True).stdout

    dealflow("migrate")
    key = re.search(r"dfk_[A-Za-z0-9_-]+", dealflow("team", "create", "Bench")).group(0)
    files = []
    for document in workflows(sink):
        files.append(work / f"{document['id']}.json")
        files[-1].write_text(json.dumps(document))
    dealflow("workflows", "import", "--team", "Bench", *files)
    return key


def measure(name: str, database_url: str, redis_url: str | None, args: argparse.Namespace,
            work: Path) -> dict:
    work = work / name
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    # One key sends every request: its rate limit would measure 429s, not saves.
    env.update(DATABASE_URL=database_url, PYTHONUNBUFFERED="1", DEALFLOW_RATE_LIMIT_PER_SECOND="0")
    if redis_url:
        env["REDIS_URL"] = redis_url
    db = make_engine(database_url)
    tally, sink = uvicorn("receiver", "durable:receiver", env, work)
    dealflow: list[Process] = []
    try:
        key = prepare(env, work, sink)
        port = free_port()
        dealflow.append(Process("server", [BIN / "dealflow", "serve", "--port", port,
                                           "--log-level", "warning"], env, work))
        for n in range(2 if redis_url else 0):
            dealflow.append(Process(f"worker{n}", [BIN / "dealflow", "worker", "--processes", "1"],
                                    env, work))
        wait(f"{sink}/count")
        wait(f"http://127.0.0.1:{port}/healthz")
        for worker in dealflow[1:]:
            wait_for(lambda w=worker: "threads on" in w.output(), 60, f"{worker.name} to start",
                     worker)

        def cpu() -> tuple[float, float]:
            return sum(p.cpu() for p in dealflow), tally.cpu()

        before, started = cpu(), time.time()
        load = wrk(f"http://127.0.0.1:{port}/api/v1/deals", {"Authorization": f"Bearer {key}"},
                   args, work)
        ended, at_end, loaded = time.time(), httpx.get(f"{sink}/count").json()["posts"], cpu()
        drained, final = drain(db, args.drain_timeout)
        after = cpu()
        received = httpx.get(f"{sink}/count", timeout=30).json()
        keys: dict[str, int] = httpx.get(f"{sink}/keys", timeout=30).json()
        expected, succeeded, durations = executions(db)
    finally:
        for proc in [*reversed(dealflow), tally]:
            proc.stop()
        db.dispose()
    last = received["last"] or started
    return {
        "name": name, "load": load, "started": started, "ended": ended, "at_end": at_end,
        "drained": drained, "db": final, "received": received,
        "duplicates": sum(n - 1 for n in keys.values() if n > 1),
        "unexpected": len(keys.keys() - expected), "lost": len(succeeded - keys.keys()),
        "durations": durations, "last_at": last - started,
        "rate": received["posts"] / (last - started) if received["posts"] else 0.0,
        "cpu_load": loaded[0] - before[0], "cpu_drain": after[0] - loaded[0],
        "cpu_receiver": after[1] - before[1],
        "logs": {p.name: p.output() for p in [*dealflow, tally]},
    }


def scale(args: argparse.Namespace, work: Path) -> dict:
    admin = make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
    name = f"dealflow_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        sys.exit(f"cannot create a database on {args.postgres} ({exc.orig}); "
                 "pass --postgres URL, or --only embedded")
    redis = None
    try:
        redis, redis_url = redis_server(work)
        url = make_url(normalize_url(args.postgres)).set(database=name)
        return measure("scale", url.render_as_string(hide_password=False), redis_url, args, work)
    finally:
        if redis is not None:
            redis.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def baseline(args: argparse.Namespace, work: Path) -> tuple[dict, tuple[float, float]]:
    """The echo under the same load; and the CPU one `post_to` call costs the caller, as the
    plugin makes it (httpx.post: a new client each time) and through one shared client."""
    echo, url = uvicorn("echo", "echo_app:app", dict(os.environ), work)
    tally, sink = uvicorn("calibration", "durable:receiver", dict(os.environ), work)
    try:
        wait(f"{url}/schema/openapi.json")
        wait(f"{sink}/count")
        result = wrk(f"{url}/echo", {}, args, work)
        body = {"idempotency_key": "k", "workflow": "w", "record_id": 1, "payload": None}
        start = time.process_time()
        for n in range(30):
            httpx.post(f"{sink}/c", json=body, headers={"Idempotency-Key": f"a{n}"}, timeout=10)
        new_client = (time.process_time() - start) / 30
        with httpx.Client(timeout=10) as client:
            start = time.process_time()
            for n in range(30):
                client.post(f"{sink}/c", json=body, headers={"Idempotency-Key": f"b{n}"})
            shared = (time.process_time() - start) / 30
        return result, (new_client, shared)
    finally:
        echo.stop()
        tally.stop()


# --- report ---------------------------------------------------------------------------------


LABELS = {"embedded": "embedded (SQLite, in-process)", "scale": "at scale (PG, Redis, 2 workers)"}
SUSPECT = re.compile(r"Traceback|ERROR|CRITICAL|WARNING|Exception", re.IGNORECASE)


def problems(result: dict) -> list[str]:
    found = []
    db, load = result["db"], result["load"]
    if load["non_2xx"] or load["socket_errors"]:
        found.append(f"non-2xx responses: {load['non_2xx']}; socket errors: "
                     f"{load['socket_errors'] or 0}")
    if not result["drained"]:
        found.append(f"not drained within the timeout: {db['unfinished']} executions unfinished")
    if db["executions"] != db["deals"] * PER_SAVE:
        found.append(f"{db['executions']} executions for {db['deals']} deals "
                     f"(expected {PER_SAVE} each)")
    if set(db["statuses"]) != {("succeeded", 1)}:
        found.append(f"executions by (status, attempts): {dict(db['statuses'])}")
    if result["duplicates"] or result["unexpected"] or result["lost"]:
        found.append(f"receiver: {result['duplicates']} duplicate deliveries, "
                     f"{result['unexpected']} keys not in the database, {result['lost']} "
                     "succeeded executions it never got")
    for proc, output in result["logs"].items():
        lines = [line for line in output.splitlines() if SUSPECT.search(line)]
        if lines:
            found.append(f"{proc} log, {len(lines)} suspect lines, the last ones:\n    "
                         + "\n    ".join(lines[-5:]))
    return found


def median(values: list[float]) -> float:
    return values[len(values) // 2] if values else float("nan")


def report(echo: dict, calibration: tuple[float, float], results: list[dict]) -> None:
    print(f"{'endpoint':<32} {'req/s':>7} {'p50':>9} {'p99':>9} {'non-2xx':>8} "
          f"{'ratio to echo':>14}")
    print(f"{'litestar echo (parse + return)':<32} {echo['rate']:>7,.0f} {echo['p50']:>9} "
          f"{echo['p99']:>9} {echo['non_2xx']:>8} {1:>14.3f}")
    for r in results:
        load = r["load"]
        print(f"{LABELS[r['name']]:<32} {load['rate']:>7,.1f} {load['p50']:>9} {load['p99']:>9} "
              f"{load['non_2xx']:>8} {load['rate'] / echo['rate']:>14.4f}")
    print()
    print(f"{'configuration':<32} {'saves':>6} {'side effects':>12} {'delivered':>10} "
          f"{'at load end':>11} {'last at':>8} {'side effects/s':>14} {'post_to p50':>11} "
          f"{'dups':>5}")
    for r in results:
        db, got = r["db"], r["received"]
        print(f"{LABELS[r['name']]:<32} {db['deals']:>6,} {db['executions']:>12,} "
              f"{got['posts']:>10,} {r['at_end']:>11,} {r['last_at']:>7.1f}s {r['rate']:>14,.1f} "
              f"{median(r['durations']):>9.1f}ms {r['duplicates']:>5}")
    print("saves: deals in the database (wrk counted "
          + ", ".join(f"{r['name']} {r['load']['requests']:,}" for r in results)
          + f" responses); side effects: executions in the database, {PER_SAVE} per save;\n"
          "at load end: delivered when wrk stopped; last at: the last delivery, from the start"
          " of the load;\nside effects/s = delivered / last at; post_to p50: the action's own"
          " time (attempt log), queueing for the CPU included")
    print()
    print(f"{'CPU (user + system)':<32} {'during load':>11} {'per save':>9} "
          f"{'per side effect':>15} {'receiver per POST':>17}")
    for r in results:
        saves, got = r["db"]["deals"], r["received"]["posts"]
        per_effect = r["cpu_drain"] / max(1, got - r["at_end"])
        per_save = (r["cpu_load"] - r["at_end"] * per_effect) / max(1, saves)
        print(f"{LABELS[r['name']]:<32} {r['cpu_load']:>10.1f}s {per_save * 1000:>7.0f}ms "
              f"{per_effect * 1000:>13.1f}ms {r['cpu_receiver'] / max(1, got) * 1000:>15.2f}ms")
    print("CPU of the Dealflow processes (server, workers; not PostgreSQL, Redis). per side"
          " effect: during the drain,\nwhen they do nothing else; per save: the load's CPU less"
          " the side effects delivered during it, over the saves.")
    print(f"one post_to call costs its caller {calibration[0] * 1000:.1f} ms CPU as the plugin "
          f"makes it (httpx.post, a new client each time), {calibration[1] * 1000:.1f} ms "
          "through a shared client")
    print()
    for r in results:
        found = problems(r)
        if not found:
            print(f"{r['name']}: every side effect delivered exactly once; no errors logged")
            continue
        kept = Path(tempfile.mkdtemp(prefix=f"dealflow-bench-{r['name']}-"))
        for proc, output in r["logs"].items():
            (kept / f"{proc}.log").write_text(output)
        print(f"{r['name']}: PROBLEMS (logs kept in {kept})\n  " + "\n  ".join(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES,
                        help="admin URL of the PostgreSQL server to create a temporary database on")
    parser.add_argument("--only", choices=["embedded", "scale"], default=None)
    parser.add_argument("--drain-timeout", type=float, default=600,
                        help="seconds to wait for the side effects after the load (default 600)")
    args = parser.parse_args()
    for tool in ["wrk"] if args.only == "embedded" else ["wrk", "redis-server"]:
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install {tool})")
    require_post_to()
    settings = {var: os.environ.get(var, default) for var, default in
                (("DEALFLOW_RELAY_INTERVAL", "1.0"), ("DEALFLOW_WORKER_THREADS", "4"))}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.seconds} s x "
          f"{args.connections} connections each; {WORKFLOWS} workflows x {ACTIONS_PER_WORKFLOW} "
          f"post_to per save; " + ", ".join(f"{k}={v}" for k, v in settings.items()), flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        echo, calibration = baseline(args, work)
        if args.only in (None, "embedded"):
            results.append(measure("embedded", f"sqlite:///{work / 'bench.db'}", None, args, work))
        if args.only in (None, "scale"):
            results.append(scale(args, work))
    report(echo, calibration, results)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
