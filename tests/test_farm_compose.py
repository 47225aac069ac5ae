"""The farm's compose file (validated by a real compose implementation) and the farm CLI's edges."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from oomfuzz.workers.testing import COMPOSE_FILE, compose_command, compose_services

ROOT = COMPOSE_FILE.parent


def test_compose_file_validates() -> None:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not installed (apt-get install -y docker-compose); CI installs it")
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "x"}
    done = subprocess.run([exe, "-f", str(COMPOSE_FILE), "--profile", "monitor", "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "worker:" in done.stdout and "flower:" in done.stdout


def test_compose_runs_the_farm_commands_the_tests_run() -> None:
    services = compose_services()
    assert compose_command("worker")[:3] == ["oomfuzz", "farm", "worker"]  # LocalFarm runs exactly this
    assert compose_command("coordinator")[:3] == ["oomfuzz", "farm", "start"]
    assert compose_command("migrate") == ["oomfuzz", "farm", "migrate"]
    assert services["flower"]["profiles"] == ["monitor"]
    for name in ("redis", "postgres"):
        assert "ports" not in services[name] and "healthcheck" in services[name]
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_sets_every_farm_setting() -> None:
    env = compose_services()["worker"]["environment"]
    source = (ROOT / "workers" / "app.py").read_text()
    read = set(re.findall(r'"(OOMFUZZ_[A-Z_]+)"', source))
    assert read <= set(env), read - set(env)
    example = (ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example and all(v in example for v in read if v.startswith("OOMFUZZ_FARM"))


@pytest.mark.parametrize("command", [["farm", "status"], ["farm", "stop"], ["farm", "worker"],
                                     ["farm", "start", "--variant", "seed-3of2", "--seconds", "5"]])
def test_unreachable_broker_is_one_line_and_exit_3(command: list[str]) -> None:
    done = subprocess.run(["oomfuzz", *command, "--broker", "redis://127.0.0.1:1/0"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 3
    assert done.stderr.startswith("oomfuzz: error: cannot reach the broker") and done.stderr.count("\n") == 1


def test_shard_longer_than_visibility_timeout_is_refused(redis_url: str) -> None:
    done = subprocess.run(["oomfuzz", "farm", "start", "--variant", "seed-3of2", "--seconds", "5", "--shard-seconds",
                           "4000", "--broker", redis_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "visibility timeout" in done.stderr
