"""Test support for the fuzz farm: the compose file's commands, run as local processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import URL

from .app import FarmSettings
from .state import FarmState, connect

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def compose_services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def compose_command(service: str) -> list[str]:
    """The command a compose service runs (the one source the tests run too)."""
    return list(compose_services()[service]["command"])


def with_redis_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    return f"{base}/{db}"


class LocalFarm:
    """Workers and a coordinator started by hand, as compose would start them, on real services."""

    def __init__(self, broker_url: str, db_url: URL, work: Path, settings: FarmSettings) -> None:
        self.broker_url, self.settings, self.work = broker_url, settings, work
        self.env = {
            **os.environ, "OOMFUZZ_BROKER_URL": broker_url,
            "OOMFUZZ_DATABASE_URL": db_url.render_as_string(hide_password=False),
            "OOMFUZZ_FARM_VISIBILITY_TIMEOUT": str(settings.visibility_timeout),
            "OOMFUZZ_FARM_RESTORE_INTERVAL": str(settings.restore_interval),
            "OOMFUZZ_FARM_SHARD_MARGIN": str(settings.shard_margin),
            "OOMFUZZ_FARM_DIR": str(work / "farm-cache"),
        }
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.state = FarmState(connect(broker_url))
        self.state.r.flushdb()

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name.split('@')[0]}.log", "wb")
        process = subprocess.Popen([*compose_command("worker"), "--name", name], env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.workers[name] = process
        return process

    def wait_for_workers(self, names: list[str], timeout: float = 60.0) -> None:
        from .app import make_app

        app = make_app(FarmSettings.from_env(self.broker_url))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = app.control.inspect(timeout=1.0).ping() or {}
            if set(names) <= set(alive):
                return
            time.sleep(0.5)
        raise TimeoutError(f"workers {names} did not answer within {timeout} s: {self.log_tails()}")

    def start_coordinator(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["oomfuzz", "farm", "start", *args, "--json"], env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def finish_coordinator(self, process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise AssertionError(f"coordinator exited {process.returncode}: {err[-2000:]} {self.log_tails()}")
        return json.loads(out)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["oomfuzz", *args], env=self.env, text=True, capture_output=True, timeout=60)

    def log_tails(self) -> str:
        return " | ".join(f"{p.name}: {p.read_text(errors='replace')[-800:]}" for p in self.work.glob("*.log"))

    def stop(self) -> None:
        """Warm shutdown of every worker still running (SIGTERM by pid, SIGKILL after 20 s)."""
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.state.r.flushdb()


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_matching(*words: str) -> list[int]:
    """Live processes anywhere on the machine whose command line contains every one of
    ``words`` (an orphan is re-parented away from its worker, so ``children`` misses it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(w in cmdline for w in words) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found
