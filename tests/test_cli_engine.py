"""The engine commands as a user runs them: exit codes, one-line errors, JSON shapes."""

import json
import math
import subprocess
import sys

import pytest

from oomfuzz.engine.scenario import DIMENSIONS

BZ03 = "hex:0501000000001101"
# DFS runs every scenario's default schedule first (no preemption); BZ-03 needs one preemption.
SCENARIOS = math.prod(len(values) for _, values in DIMENSIONS)


def oomfuzz(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-c", "from oomfuzz.cli import main; main()", *args],
        capture_output=True, text=True, input=stdin, timeout=120,
    )


def test_variants_json():
    out = oomfuzz("variants", "--json")
    assert out.returncode == 0
    rows = json.loads(out.stdout)["variants"]
    seed = next(r for r in rows if r["name"] == "seed-3of2")
    assert seed["parent"] == "mmotm-2016-01" and "BZ-03" in seed["known_bugs"]


def test_replay_renders_a_swimlane_with_citations():
    out = oomfuzz("replay", "--variant", "seed-3of2", BZ03)
    assert out.returncode == 0, out.stderr
    assert "FINDING [BZ-03]" in out.stdout
    assert "mm/oom_kill.c:exit_oom_victim(tsk) @ seed-3of2" in out.stdout
    assert "✗" in out.stdout and "»" in out.stdout
    assert f"oomfuzz replay --variant seed-3of2 {BZ03}" in out.stdout


def test_replay_says_how_many_deviations_preempt_a_running_thread():
    # BZ-05's pinned v4.6 schedule: 13 deviations, of which 4 switch away from a thread that
    # could run on (the swimlane's » steps); the other 9 choose who runs after a block.
    bz05 = "hex:0500000200000002000001000100100001000500060100010101020101000200"
    out = oomfuzz("replay", "--variant", "v4.6", bz05)
    assert out.returncode == 0, out.stderr
    assert "13 preemptions (4 of a running thread, marked »)" in out.stdout
    lane = out.stdout.split("kernel functions:")[0]
    assert lane.count("»") == 4 + 1  # the four steps, and the header's legend
    data = json.loads(oomfuzz("replay", "--variant", "v4.6", bz05, "--json").stdout)
    assert (data["preemptions"], data["running_preemptions"]) == (13, 4)
    assert sum(row["preempted"] for row in data["trace"]) == 4
    one = oomfuzz("replay", "--variant", "seed-3of2", BZ03)
    assert "1 preemption," in one.stdout  # all of them marked: no second figure


def test_replay_json():
    out = oomfuzz("replay", "--variant", "seed-3of2", BZ03, "--json")
    data = json.loads(out.stdout)
    assert data["finding"]["known_bug"] == "BZ-03"
    assert data["trace"][-1]["violation"] is True


@pytest.mark.parametrize(
    "args, message",
    [
        (("replay", "--variant", "v9.9", "hex:00"), "unknown variant 'v9.9'"),
        (("replay", "--variant", "v4.5", "hex:zz"), "bad input"),
        (("replay", "--variant", "v4.5", "/no/such/file"), "neither hex"),
        (("explore", "--variant", "v4.5", "--strategy", "nope"), "Invalid value"),
        (("explore", "--variant", "nope.py"), "does not exist"),
        (("explore", "--variant", "v4.5", "--strategy", "pct", "--jobs", "2"), "oomfuzz fuzz --jobs"),
        (("explore", "--variant", "v4.5", "--jobs", "2", "--scenario", "x.toml"), "--scenario fixes one"),
    ],
)
def test_user_errors_are_one_line(args, message):
    out = oomfuzz(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_explore_json_lists_findings_with_replay_commands():
    budget = SCENARIOS + 500  # BZ-03 came at execution 2,582 of 2,520 scenarios' DFS
    out = oomfuzz("explore", "--variant", "seed-3of2", "--strategy", "dfs", "--executions", str(budget), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"variant", "strategy", "executions", "seconds", "findings"} <= set(data)
    bz03 = [f for f in data["findings"] if f["known_bug"] == "BZ-03"]
    assert bz03, data["findings"]
    for key in ("invariant", "title", "signature", "known_bug", "preemptions", "steps", "replay"):
        assert key in bz03[0]
    replayed = oomfuzz(*bz03[0]["replay"].split()[1:], "--json")
    assert json.loads(replayed.stdout)["finding"]["signature"] == bz03[0]["signature"]


def test_explore_dfs_says_which_bound_it_finished(tmp_path):
    scenario = tmp_path / "two_threads.toml"
    scenario.write_text('shape = "run,run"\n')
    out = oomfuzz("explore", "--variant", "seed-3of2", "--strategy", "dfs", "--preemptions", "2",
                  "--scenario", str(scenario))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "search space exhausted" in text and "complete up to 2 preemptions: every such schedule of scenario shape=run,run" in text
    data = json.loads(oomfuzz("explore", "--variant", "v4.5", "--strategy", "dfs", "--executions",
                              str(SCENARIOS + 10), "--json").stdout)
    current = data["dfs"].pop("current_pass")
    assert data["dfs"] == {"complete_bound": 0, "passes": [{"bound": 0, "executions": SCENARIOS}], "jobs": 1}
    assert current["bound"] == 1 and current["scenarios"] == SCENARIOS and 0 <= current["scenarios_done"] < SCENARIOS
    out = oomfuzz("explore", "--variant", "v4.5", "--strategy", "dfs", "--executions", str(SCENARIOS + 10))
    assert "complete up to 0 preemptions: every such schedule of every scenario ran" in " ".join(out.stdout.split())
    assert f"the pass over ≤ 1 did not finish ({current['scenarios_done']} of {SCENARIOS} scenarios done)" in " ".join(out.stdout.split())


def test_explore_dfs_jobs_reports_passes_as_one_process_would():
    out = oomfuzz("explore", "--variant", "v4.5", "--strategy", "dfs", "--jobs", "2", "--executions",
                  str(SCENARIOS + 10), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["executions"] == SCENARIOS + 10
    single = json.loads(oomfuzz("explore", "--variant", "v4.5", "--strategy", "dfs", "--executions",
                                str(SCENARIOS + 2000), "--json").stdout)["dfs"]
    data = json.loads(oomfuzz("explore", "--variant", "v4.5", "--strategy", "dfs", "--jobs", "2", "--executions",
                              str(SCENARIOS + 2000), "--json").stdout)
    # Which scenarios' parts have ended when a budget cuts depends on how the two jobs ran.
    current, single_current = data["dfs"].pop("current_pass"), single.pop("current_pass")
    assert data["dfs"] == {**single, "jobs": 2}
    assert current["bound"] == single_current["bound"] == 1 and current["scenarios"] == SCENARIOS
    assert current["scenarios_done"] > 0 and single_current["scenarios_done"] > 0
    assert [f["known_bug"] for f in data["findings"]] == ["BZ-01"]


def test_user_variant_file_from_the_readme():
    out = oomfuzz("replay", "--variant", "examples/seed_test_and_clear.py", BZ03, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["finding"] is None
