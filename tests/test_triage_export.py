"""`oomfuzz triage export` (pytest, json, input) and `show --html` rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from triage_fixtures import BZ03_A, fill, oomfuzz  # noqa: E402

SCREENSHOT = Path(__file__).parents[1] / "docs" / "img" / "swimlane.png"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'findings.db'}"
    return url, fill(url)


def run_exported(path: Path, variant: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OOMFUZZ_VARIANT": variant}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                          capture_output=True, text=True, env=env, cwd=path.parent, timeout=300)


def test_exported_pytest_fails_on_affected_and_passes_on_fixed(db, tmp_path):
    url, ids = db
    path = tmp_path / "test_bz03_regression.py"
    out = oomfuzz("triage", "export", str(ids["BZ-03"]), "--format", "pytest", "-o", str(path), "--db", url)
    assert out.returncode == 0, out.stderr
    affected = run_exported(path, "seed-3of2")
    assert affected.returncode == 1, affected.stdout
    assert "1 failed, 1 passed" in affected.stdout and "still has memdie_unpaired_exit" in affected.stdout
    fixed = run_exported(path, "v4.6-rc1")
    assert fixed.returncode == 0 and "2 passed" in fixed.stdout, fixed.stdout
    default = run_exported(path, "")  # no environment: every later variant the input does not race on
    assert default.returncode == 0 and "6 passed" in default.stdout, default.stdout


def test_export_input_and_json(db):
    url, ids = db
    raw = subprocess.run([sys.executable, "-c", "import sys; from oomfuzz.cli import main; main()", "triage",
                          "export", str(ids["BZ-03"]), "--format", "input", "--db", url], capture_output=True)
    assert raw.returncode == 0 and raw.stdout == BZ03_A
    out = oomfuzz("triage", "export", str(ids["BZ-03"]), "--format", "json", "--db", url)
    data = json.loads(out.stdout)
    assert data["format"] == "oomfuzz-finding/1" and data["reproduced"] is True
    assert data["finding"]["known_bug"] == "BZ-03" and data["execution"]["input"] == BZ03_A.hex()
    assert data["schedule"][-1]["violation"] and data["schedule"][-1]["function"] == "exit_oom_victim"
    assert sum(r["preempted"] for r in data["schedule"]) == 1


def test_show_html_renders_in_chromium(db, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    url, ids = db
    page = tmp_path / "bz03.html"
    out = oomfuzz("triage", "show", str(ids["BZ-03"]), "--html", str(page), "--search", "200", "--db", url)
    assert out.returncode == 0, out.stderr
    assert "introduced in: seed-3of2; fixed in: v4.6-rc1" in out.stdout
    html = page.read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="swimlane"' in dom.stdout and 'id="matrix"' in dom.stdout
    assert dom.stdout.count('class="ev violation"') == 1 and dom.stdout.count("ev preempted") == 1
    for role in ("reaper", "victim", "sibling", "allocator"):  # one lane per thread role
        assert f"<th>{role}</th>" in dom.stdout
    assert "mm/oom_kill.c:exit_oom_victim" in dom.stdout
    assert "oomfuzz replay --variant seed-3of2 hex:0501000000001101" in dom.stdout
    shot = tmp_path / "swimlane.png"
    subprocess.run([chromium, *flags, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,900",
                    page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("OOMFUZZ_UPDATE_SCREENSHOT"):  # refresh the README's picture only when asked
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_html_meta_names_the_running_preemptions() -> None:
    from oomfuzz.fuzzer.html import render_html

    def meta(execution: dict) -> str:
        detail = {"id": 1, "known_bug": None, "title": "t", "invariant": "i", "signature": "s", "status": "new",
                  "hits": 1, "variants": ["v4.6"], "meaning": "m"}
        base = {"variant": "v4.6", "scenario": {"shape": "run"}, "steps": 54, "outcome": "violation", "replay": "r"}
        html = render_html(detail, {**base, **execution}, [], [], None)
        return " ".join(html.split("<h2>Swimlane</h2>")[1].split("</p>")[0].split())

    assert "54 steps, 13 preemptions (4 of a running thread, marked »)," in meta(
        {"preemptions": 13, "running_preemptions": 4})
    assert "54 steps, 1 preemption, outcome" in meta({"preemptions": 1, "running_preemptions": 1})
    assert "54 steps, 2 preemptions, outcome" in meta({"preemptions": 2})  # a summary from before the field
