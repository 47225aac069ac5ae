"""Episode grouping: reports, overlapping kills, ftrace-only episodes, versions, the summary."""

from __future__ import annotations

from oomfuzz.corpus.events import EventKind
from oomfuzz.corpus.parse import parse_text

K = EventKind


def invoked(t: float, comm: str = "alloc") -> str:
    return f"[{t:12.6f}] {comm} invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0"


def killed(t: float, pid: int, comm: str = "victim") -> str:
    return (f"[{t:12.6f}] Out of memory: Killed process {pid} ({comm}) total-vm:1kB, anon-rss:1kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0")


def reaped(t: float, pid: int, comm: str = "victim") -> str:
    return (f"[{t:12.6f}] oom_reaper: reaped process {pid} ({comm}), now anon-rss:0kB, "
            "file-rss:0kB, shmem-rss:0kB")


def tp(t: float, event: str, payload: str, ctx: str = "alloc-7") -> str:
    return f"{ctx:>16s} [000] .... {t:12.6f}: {event}: {payload}"


def test_overlapping_episodes_are_told_apart_by_victim_pid() -> None:
    text = "\n".join([
        invoked(1.0, "a"), killed(1.1, 100, "v1"),
        invoked(1.2, "b"), killed(1.3, 200, "v2"),
        f"[    1.400000] oom_reaper: unable to reap pid:200 (v2)",
        reaped(1.5, 100, "v1"),
    ])
    eps = parse_text(text).episodes
    assert [(ep.victim_pids, ep.invoker_comm) for ep in eps] == [((100,), "a"), ((200,), "b")]
    assert [e.kind for e in eps[0].events] == [K.OOM_INVOKED, K.KILLED, K.REAPED]
    assert [e.kind for e in eps[1].events] == [K.OOM_INVOKED, K.KILLED, K.UNABLE_TO_REAP]


def test_full_report_with_selection_of_a_sacrificed_child_and_shared_mm() -> None:
    text = "\n".join([
        invoked(1.0, "Web Content"),
        "[    1.000001] CPU: 2 PID: 4242 Comm: Web Content Not tainted 4.9.0-8-amd64 #1 Debian",
        "[    1.000002] [ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
        "[    1.000003] [ 4000]  1000  4000    10000     5000      30       3        0             0 firefox",
        "[    1.000004] [ 4001]  1000  4001    20000     9000      60       3        0           100 Web Content",
        "[    1.000005] Out of memory: Kill process 4000 (firefox) score 500 or sacrifice child",
        "[    1.000006] Killed process 4001 (Web Content) total-vm:80000kB, anon-rss:36000kB, "
        "file-rss:0kB, shmem-rss:0kB",
        "[    1.000007] Kill process 4002 (Web Content) sharing same memory",
    ])
    (ep,) = parse_text(text).episodes
    assert ep.victim_pids == (4001, 4002)
    assert ep.victim_comm == "Web Content"
    assert (ep.invoker_comm, ep.invoker_pid) == ("Web Content", 4242)
    assert ep.kernel_version == "4.9.0-8-amd64" and ep.kernel_release == (4, 9, 0)
    assert [row.pid for row in ep.task_rows] == [4000, 4001]
    assert ep.task_rows[1].fields["oom_score_adj"] == 100
    assert len(ep.kills) == 2 and not ep.memcg


def test_ftrace_only_episode_is_keyed_by_victim_pid_and_collects_exit_and_free() -> None:
    text = "\n".join([
        tp(1.0, "mark_victim", "pid=502"),
        tp(1.1, "wake_reaper", "pid=502"),
        tp(1.15, "mark_victim", "pid=777"),
        tp(1.2, "start_task_reaping", "pid=502", "oom_reaper-23"),
        tp(1.3, "finish_task_reaping", "pid=502", "oom_reaper-23"),
        tp(1.4, "sched_process_exit", "comm=v pid=502 prio=120", "v-502"),
        tp(1.5, "sched_process_exit", "comm=bash pid=9 prio=120", "bash-9"),
        tp(1.6, "sched_process_free", "comm=v pid=502 prio=120", "<idle>-0"),
        tp(1.7, "skip_task_reaping", "pid=777", "oom_reaper-23"),
    ])
    result = parse_text(text)
    first, second = result.episodes
    assert first.victim_pids == (502,) and first.victim_comm == "v"
    assert [e.kind.value for e in first.events] == [
        "mark_victim", "wake_reaper", "start_task_reaping", "finish_task_reaping",
        "sched_process_exit", "sched_process_free"]
    assert second.victim_pids == (777,)
    assert [e.kind for e in second.events] == [K.MARK_VICTIM, K.SKIP_TASK_REAPING]
    unattached = [e for e in result.events if not any(e in ep.events for ep in result.episodes)]
    assert [(e.kind, e.pid) for e in unattached] == [(K.SCHED_PROCESS_EXIT, 9)]


def test_mark_victim_before_the_kill_line_joins_the_same_episode() -> None:
    text = "\n".join([invoked(1.0), tp(1.05, "mark_victim", "pid=100"), killed(1.1, 100),
                      reaped(1.2, 100)])
    (ep,) = parse_text(text).episodes
    assert [e.kind for e in ep.events] == [K.OOM_INVOKED, K.MARK_VICTIM, K.KILLED, K.REAPED]


def test_a_second_mark_of_the_same_pid_is_a_new_episode() -> None:
    text = "\n".join([tp(1.0, "mark_victim", "pid=5"), tp(9.0, "mark_victim", "pid=5")])
    assert len(parse_text(text).episodes) == 2


def test_reaper_line_without_a_kill_line_opens_an_episode_for_its_victim() -> None:
    (ep,) = parse_text(reaped(5.0, 42, "x y")).episodes
    assert ep.victim_pids == (42,) and ep.victim_comm == "x y"


def test_partial_paste_starting_at_the_task_table() -> None:
    text = "\n".join([
        "[133747.719711] [  17456]     0 17456     4166      271    65536        0             0 sshd",
        "[133747.719737] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=chromium,pid=27368,uid=1000",
        killed(133747.719795, 27368, "chromium"),
        "[133747.719800] [  17456]     0 17456     4166      271    65536        0             0 sshd",
    ])
    eps = parse_text(text).episodes
    assert [ep.victim_pids for ep in eps] == [(27368,), ()]
    assert len(eps[0].task_rows) == 1 and len(eps[1].task_rows) == 1


def test_allocator_retries_join_the_report_of_their_task() -> None:
    text = "\n".join([
        tp(0.5, "reclaim_retry_zone", "node=0 zone=DMA32 order=0 reclaimable=1 available=2 "
           "min_wmark=3 no_progress_loops=16 wmark_check=0", "mem_eater-3148"),
        tp(0.6, "compact_retry", "order=0 priority=COMPACT_PRIO_ASYNC compaction_result=skipped "
           "retries=0 max_retries=16 should_retry=0", "other-9"),
        invoked(1.0, "mem_eater"),
        "[    1.000001] CPU: 3 PID: 3148 Comm: mem_eater Not tainted 4.8.0 #1",
        killed(1.1, 55),
    ])
    result = parse_text(text)
    (ep,) = result.episodes
    assert [e.kind for e in ep.events] == [K.RECLAIM_RETRY_ZONE, K.OOM_INVOKED,
                                           K.KERNEL_VERSION, K.KILLED]
    assert ep.invoker_pid == 3148


def test_episode_kernel_version_comes_from_its_header_else_the_log() -> None:
    text = "\n".join([
        killed(1.0, 1),
        "[    2.000000] Linux version 5.10.0-21-amd64 (debian-kernel@lists.debian.org) #1 SMP",
        killed(3.0, 2),
        invoked(4.0, "x"),
        "[    4.000001] CPU: 0 PID: 9 Comm: x Not tainted 5.10.0-22-amd64 #1",
        killed(4.1, 3),
    ])
    result = parse_text(text)
    assert [ep.kernel_version for ep in result.episodes] == [
        "5.10.0-21-amd64", "5.10.0-21-amd64", "5.10.0-22-amd64"]
    assert result.summary()["kernel_version"] == "5.10.0-21-amd64"


def test_version_header_of_another_task_does_not_join_the_report() -> None:
    text = "\n".join([invoked(1.0, "a"), "[    1.1] CPU: 0 PID: 9 Comm: b Not tainted 6.1.0 #1",
                      killed(1.2, 5)])
    (ep,) = parse_text(text).episodes
    assert ep.invoker_pid is None
    assert ep.kernel_version == "6.1.0"  # still the log's version


def test_memcg_is_recognised_in_every_era() -> None:
    v1 = "[ 1.0] Task in /docker/x killed as a result of limit of /docker/x\n" + killed(1.1, 5)
    v5 = killed(1.0, 5).replace("Out of memory", "Memory cgroup out of memory")
    constraint = ("[ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
                  "mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=v,pid=5,uid=0\n" + killed(1.1, 5))
    v2 = ("[ 1.0] memory: usage 102400kB, limit 102400kB, failcnt 12\n"
          + killed(1.1, 5).replace("Out of memory", "Memory cgroup out of memory"))
    for text in (v1, v5, constraint, v2):
        (ep,) = parse_text(text).episodes
        assert ep.memcg, text
    assert not parse_text(killed(1.0, 5)).episodes[0].memcg


def test_summary_has_the_promised_fields() -> None:
    text = "\n".join([invoked(1.0), killed(1.1, 100, "a b"), reaped(1.2, 100, "a b"),
                      tp(1.3, "mark_victim", "pid=100"), "noise"])
    summary = parse_text(text, source="x.log").summary()
    assert summary["source"] == "x.log"
    assert summary["episodes"] == 1
    assert summary["kills"] == [{"pid": 100, "comm": "a b"}]
    assert (summary["reaped"], summary["unable_to_reap"]) == (1, 0)
    assert summary["tracepoints"] == [{"event": "mark_victim", "pid": 100}]
    assert (summary["skipped_lines"], summary["lines_read"]) == (1, 5)
    assert summary["kernel_version"] is None
    assert summary["event_counts"] == {"killed": 1, "mark_victim": 1, "oom_invoked": 1,
                                       "reaped": 1}
