"""Focused tests of each trace line form, prefix, wrap, duplicate and journal quirk."""

from __future__ import annotations

import pytest

from oomfuzz.corpus.events import Event, EventKind, release_tuple
from oomfuzz.corpus.parse import parse_text
from oomfuzz.corpus.prefix import strip_prefix

K = EventKind


def only(text: str, kind: EventKind | None = None) -> Event:
    """The single event of `kind` (or the single event) parsed from `text`."""
    events = [e for e in parse_text(text).events if kind is None or e.kind is kind]
    assert len(events) == 1, events
    return events[0]


def kinds(text: str) -> list[str]:
    return [e.kind.value for e in parse_text(text).events]


# -- prefixes ---------------------------------------------------------------------------------

KILL = "Killed process 5 (x) total-vm:1kB, anon-rss:2kB, file-rss:3kB"


@pytest.mark.parametrize(
    ("prefix", "time"),
    [
        ("", None),
        ("[  123.456789] ", 123.456789),
        ("[Sat Apr 27 22:56:09 2019] ", 1556405769.0),
        ("Nov 24 19:52:22 dr-2 kernel: ", 28410742.0),
        ("Mar  3 10:00:00 host kernel: ", (60 + 2) * 86400 + 36000.0),
        ("Jun 11 20:17:20.250000 hyperv kernel: ", 14069840.25),
        ("Mar  3 10:00:00 host kernel: [  100.5] ", 100.5),
        ("2021-06-11T20:17:20+0000 hyperv kernel: ", 1623442640.0),
        ("2021-06-11T20:17:20.5+02:00 hyperv kernel: ", 1623435440.5),
        ("2020-03-03T10:00:00,000100+00:00 ", 1583229600.0001),
        ("<4>[  200.000000] ", 200.0),
        ("6,1234,300000000,-;", 300.0),
        ("kern  :err   : [  301.000000] ", 301.0),
        ("[  12.000000][ T4242] ", 12.0),
        ("[  12.500000] myhost kernel: ", 12.5),
    ],
)
def test_every_prefix_yields_the_message_and_its_clock(prefix: str, time: float | None) -> None:
    e = only(prefix + KILL)
    assert (e.kind, e.pid, e.comm) == (K.KILLED, 5, "x")
    assert e.time == pytest.approx(time) if time is not None else e.time is None


def test_non_kernel_syslog_lines_are_noise_even_with_keywords() -> None:
    text = "Mar  3 10:00:00 host bash[5]: " + KILL + "\n"
    text += "Mar  3 10:00:00 host systemd[1]: foo.service: killed by the OOM killer.\n"
    assert parse_text(text).events == ()


def test_strip_prefix_never_eats_a_bare_task_row() -> None:
    assert strip_prefix("[    384]     0   384    15444      899 x")[0] == 0


# -- dmesg record forms, by era ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "comm", "fields"),
    [
        (
            "gamemoded invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), "
            "order=0, oom_score_adj=200",
            "gamemoded",
            {"gfp_mask": "0x140cca", "gfp_flags": "GFP_HIGHUSER_MOVABLE|__GFP_COMP", "order": 0,
             "oom_score_adj": 200},
        ),
        (
            "mem_eater invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), "
            "nodemask=0-1,3, order=0, oom_score_adj=0",
            "mem_eater",
            {"gfp_mask": "0x24280ca", "gfp_flags": "GFP_HIGHUSER_MOVABLE|__GFP_ZERO",
             "nodemask": "0-1,3", "order": 0, "oom_score_adj": 0},
        ),
        (
            "dsm_sa_datamgrd invoked oom-killer: gfp_mask=0x201da, order=0, oom_adj=0, "
            "oom_score_adj=0",
            "dsm_sa_datamgrd",
            {"gfp_mask": "0x201da", "order": 0, "oom_adj": 0, "oom_score_adj": 0},
        ),
        ("Web Content invoked oom-killer: gfp_mask=0x0, order=-1, oom_score_adj=0", "Web Content",
         {"gfp_mask": "0x0", "order": -1, "oom_score_adj": 0}),
        ("oom-killer: gfp_mask=0x201d2, order=0", None, {"gfp_mask": "0x201d2", "order": 0}),
    ],
)
def test_invocation_header_of_each_era(line: str, comm: str | None, fields: dict) -> None:
    e = only(line)
    assert (e.kind, e.comm, dict(e.fields)) == (K.OOM_INVOKED, comm, fields)


@pytest.mark.parametrize(
    ("line", "pid", "comm", "fields"),
    [
        ("Killed process 1234 (foo)", 1234, "foo", {}),
        ("Out of memory: Killed process 1234 (foo).", 1234, "foo", {"reason": "Out of memory"}),
        (
            "Killed process 2592 (mysqld) vsz:1234kB, anon-rss:12kB, file-rss:4kB",
            2592, "mysqld", {"vsz_kb": 1234, "anon_rss_kb": 12, "file_rss_kb": 4},
        ),
        (
            "Killed process 20557, UID 188, (haproxy) total-vm:8560500kB, anon-rss:12468kB, "
            "file-rss:264kB",
            20557, "haproxy",
            {"uid": 188, "total_vm_kb": 8560500, "anon_rss_kb": 12468, "file_rss_kb": 264},
        ),
        (
            "Killed process 32308 (stress) total-vm:110644kB, anon-rss:99620kB, file-rss:192kB, "
            "shmem-rss:0kB",
            32308, "stress",
            {"total_vm_kb": 110644, "anon_rss_kb": 99620, "file_rss_kb": 192, "shmem_rss_kb": 0},
        ),
        (
            "Out of memory: Killed process 27345 (gotg.exe) total-vm:7484424kB, "
            "anon-rss:2583484kB, file-rss:0kB, shmem-rss:112kB, UID:1000 pgtables:7340kB "
            "oom_score_adj:200",
            27345, "gotg.exe",
            {"reason": "Out of memory", "total_vm_kb": 7484424, "anon_rss_kb": 2583484,
             "file_rss_kb": 0, "shmem_rss_kb": 112, "uid": 1000, "pgtables_kb": 7340,
             "oom_score_adj": 200},
        ),
        (
            "Memory cgroup out of memory: Killed process 9 (a (b) c) total-vm:1kB, anon-rss:1kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:-5",
            9, "a (b) c",
            {"reason": "Memory cgroup out of memory", "total_vm_kb": 1, "anon_rss_kb": 1,
             "file_rss_kb": 0, "shmem_rss_kb": 0, "uid": 0, "pgtables_kb": 4,
             "oom_score_adj": -5},
        ),
        ("Out of memory (oom_kill_allocating_task): Killed process 7 (Web Content)", 7,
         "Web Content", {"reason": "Out of memory (oom_kill_allocating_task)"}),
        ("Kill process 79 (kworker/u8:2) sharing same memory", 79, "kworker/u8:2",
         {"sharing_mm": 1}),
    ],
)
def test_every_killed_form(line: str, pid: int, comm: str, fields: dict) -> None:
    e = only(line)
    assert (e.kind, e.pid, e.comm, dict(e.fields)) == (K.KILLED, pid, comm, fields)


@pytest.mark.parametrize(
    ("line", "pid", "comm", "score"),
    [
        ("Out of memory: Kill process 20557 (haproxy) score 133 or sacrifice child", 20557,
         "haproxy", 133),
        ("Memory cgroup out of memory: Kill process 32308 (stress) score 1718 or sacrifice child",
         32308, "stress", 1718),
        ("Out of memory: kill process 1 (a (b) c) score 5 or a child", 1, "a (b) c", 5),
        ("Out of Memory: Kill process 1234 (foo) score 5678 and children.", 1234, "foo", 5678),
        ("Out of memory: Kill process 3 (x) with score 9 or sacrifice child", 3, "x", 9),
    ],
)
def test_every_selection_form(line: str, pid: int, comm: str, score: int) -> None:
    e = only(line)
    assert (e.kind, e.pid, e.comm, e.fields["score"]) == (K.KILL_SELECT, pid, comm, score)


def test_would_have_killed_is_not_a_kill() -> None:
    assert kinds("Would have killed process 5 (x). But continuing instead.") == []


def test_reaper_lines() -> None:
    reaped = only("oom_reaper: reaped process 662 (Web Content), now anon-rss:0kB, "
                  "file-rss:4kB, shmem-rss:0kB")
    assert (reaped.kind, reaped.pid, reaped.comm) == (K.REAPED, 662, "Web Content")
    assert dict(reaped.fields) == {"anon_rss_kb": 0, "file_rss_kb": 4, "shmem_rss_kb": 0}
    typo = only("oom_reaper: reaped process 2020 (a.out), now anon-rss:0kB, file-rss:0kB, "
                "shmem-rss:0lB")
    assert typo.fields["shmem_rss_kb"] == "0lB"
    unable = only("oom_reaper: unable to reap pid:1562 (a (b) c)")
    assert (unable.kind, unable.pid, unable.comm) == (K.UNABLE_TO_REAP, 1562, "a (b) c")
    newer = only("oom_reaper: unable to reap pid:7 (x), anon-rss:5kB, file-rss:0kB, "
                 "shmem-rss:0kB")
    assert newer.fields["anon_rss_kb"] == 5


def test_oom_kill_constraint_line_keeps_commas_in_comm_and_node_lists() -> None:
    e = only("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=0,2,cpuset=/,mems_allowed=0-1,"
             "global_oom,oom_memcg=/k/pod,task_memcg=/k/pod/c,task=a,b (c),pid=42,uid=1000")
    assert (e.kind, e.pid, e.comm) == (K.OOM_KILL_CONSTRAINT, 42, "a,b (c)")
    assert dict(e.fields) == {
        "uid": 1000, "constraint": "CONSTRAINT_MEMCG", "nodemask": "0,2", "cpuset": "/",
        "mems_allowed": "0-1", "global_oom": 1, "oom_memcg": "/k/pod", "task_memcg": "/k/pod/c",
    }


def test_memcg_lines_and_freezer_lines() -> None:
    e = only("Task in /docker/abc killed as a result of limit of /docker")
    assert (e.kind, dict(e.fields)) == (K.MEMCG_OOM, {"task_memcg": "/docker/abc",
                                                        "limit_memcg": "/docker"})
    usage = only("[ 5.0] memory: usage 204800kB, limit 204800kB, failcnt 4563")
    assert dict(usage.fields) == {"usage_kb": 204800, "limit_kb": 204800, "failcnt": 4563}
    assert kinds("memory+swap: usage 0kB, limit 9007199254740988kB, failcnt 0") == []
    assert kinds("OOM killer disabled.\nOOM killer enabled.") == ["oom_disabled", "oom_enabled"]


@pytest.mark.parametrize(
    ("line", "version", "pid", "comm"),
    [
        ("CPU: 1 PID: 1158 Comm: gamemoded Not tainted 6.1.52-valve19 #57 9d05e4f", "6.1.52-valve19",
         1158, "gamemoded"),
        ("CPU: 3 PID: 3148 Comm: mem eater Tainted: G        W       4.8.0-oomtrace3 #1024",
         "4.8.0-oomtrace3", 3148, "mem eater"),
        ("CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.13.0 #1", "6.13.0", 1, "init"),
        ("Pid: 4917, comm: dsm_sa_datamgrd Not tainted 2.6.32-279.19.1.el6.x86_64 #1",
         "2.6.32-279.19.1.el6.x86_64", 4917, "dsm_sa_datamgrd"),
        ("      Not tainted 4.5.0-rc5-next-20160224+ #75", "4.5.0-rc5-next-20160224+", None, None),
        ("Linux version 5.15.0-91-generic (buildd@lcy02) (gcc 11) #101-Ubuntu SMP", "5.15.0-91-generic",
         None, None),
    ],
)
def test_kernel_version_lines(line: str, version: str, pid: int | None, comm: str | None) -> None:
    e = only("[ 1.000000] " + line)
    assert (e.kind, e.fields["version"], e.pid, e.comm) == (K.KERNEL_VERSION, version, pid, comm)


def test_release_tuple() -> None:
    assert release_tuple("4.4.0-130-generic") == (4, 4, 0)
    assert release_tuple("5.13.0-rc5-next-20210611-llvm") == (5, 13, 0)
    assert release_tuple("2.6.32-279.19.1.el6.x86_64") == (2, 6, 32)
    assert release_tuple("6.9") == (6, 9, 0)
    assert release_tuple("junk") is None and release_tuple(None) is None


# -- task table -------------------------------------------------------------------------------

HEADERS = {
    "2.6": "[ pid ]   uid  tgid total_vm      rss cpu oom_adj oom_score_adj name",
    "4.4": "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
    "4.19": "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
    "6.8": "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
    "swapents oom_score_adj name",
}


@pytest.mark.parametrize("era", sorted(HEADERS))
@pytest.mark.parametrize("name", ["sshd", "(sd-pam)", "Web Content", "a (b) c", "1234"])
def test_task_rows_follow_their_header(era: str, name: str) -> None:
    columns = HEADERS[era].split("]", 1)[1].split()[:-1]
    numbers = [str(i * 10 - 1000 if c == "oom_score_adj" else i) for i, c in enumerate(columns)]
    row = f"[  4242] {' '.join(numbers)} {name}"
    e = only(f"{HEADERS[era]}\n{row}\n")
    assert (e.kind, e.pid, e.comm) == (K.TASK_TABLE_ROW, 4242, name)
    assert dict(e.fields) == {c: int(n) for c, n in zip(columns, numbers)}


def test_task_row_without_header_names_the_stable_columns() -> None:
    e = only("[133747.719724] [  17468]  1000 17468   433587   303033  2588672        0     -17 uni son")
    assert e.comm == "uni son"
    assert dict(e.fields) == {"uid": 1000, "tgid": 17468, "total_vm": 433587, "rss": 303033,
                              "col5": 2588672, "col6": 0, "oom_score_adj": -17}


def test_task_row_edge_shapes() -> None:
    """Rows at the edges of the row pattern (unrolled up to 32 columns, possessive numbers)."""
    header = HEADERS["2.6"]
    wide = " ".join(f"c{i}" for i in range(40))
    e = only(f"[ pid ] {wide} name\n[  7] {' '.join(['1'] * 40)} wide\n")
    assert (e.pid, e.comm, len(e.fields), e.fields["c39"]) == (7, "wide", 40, 1)
    extra = only(f"{header}\n[ 12] 0 12 100 5 0 -17 -1000 4 name\n")
    assert (extra.comm, extra.fields["oom_score_adj"]) == ("4 name", -1000)
    assert only(f"{header}\n[ 12] 0 12 100 5 0 -17 -1000   \n").comm == ""  # blank name
    assert kinds(f"{header}\n[ 12] 0 12 {'9' * 19} 5 0 -17 -1000 x\n") == []  # > 18 digits
    stamped = f"[  1.000001] [ 12] 0 12 100 5 0 -17 -1000 x\n"
    result = parse_text(f"[  1.000000] {header}\n{stamped}{stamped}")
    assert [e.comm for e in result.events] == ["x"] and result.duplicate_count == 1


@pytest.mark.parametrize("elsewhere", ["", "[  0.5] caf\u00e9 \u0663\n"])
def test_task_rows_read_alike_in_ascii_and_other_text(elsewhere: str) -> None:
    """ASCII-only text takes faster row patterns; other whitespace (\\x0c, \\x1f) still counts."""
    text = (f"{elsewhere}{HEADERS['2.6']}\n[ 12] 0 12 100 5\x0c0\x1f-17 -1000 odd\n"
            f"[ 13] 0 13 100 5 0 -17 -1000 plain\n")
    rows = [(e.pid, e.comm, dict(e.fields)["oom_adj"]) for e in parse_text(text).events]
    assert rows == [(12, "odd", -17), (13, "plain", -17)]


# -- hard wraps -------------------------------------------------------------------------------


def test_word_wrapped_kill_and_reap_lines_are_joined() -> None:
    text = (
        "[  100.000000] Out of memory: Killed process 123 (foo) total-vm:1234kB, anon-rss:100kB,\n"
        "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:40kB oom_score_adj:200\n"
        "[  100.100000] oom_reaper: reaped process 123 (foo), now anon-rss:0kB, file-rss:0kB,\n"
        "shmem-rss:0kB\n"
    )
    result = parse_text(text)
    assert [(e.kind, e.line, e.end_line) for e in result.events] == [
        (K.KILLED, 1, 2), (K.REAPED, 3, 4)]
    assert result.events[0].fields["oom_score_adj"] == 200
    assert result.skipped_count == 0


def test_wrap_inside_a_number_a_comm_and_a_keyword() -> None:
    mid_number = ("[ 1.0] Killed process 1 (a) total-vm:12kB, anon-rss:1\n"
                  "00kB, file-rss:0kB, shmem-rss:0kB\n")
    assert only(mid_number).fields["anon_rss_kb"] == 100
    mid_comm = ("[ 1.0] Killed process 1 (Web Con\n"
                "tent) total-vm:12kB, anon-rss:1kB, file-rss:0kB\n")
    assert only(mid_comm).comm == "Web Content"
    keyword = ("Jun 11 20:17:20 hyperv kernel: Memory cgroup out of memory: Killed\n"
               "process 662 (baloo_file) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n")
    e = only(keyword)
    assert (e.pid, e.line, e.end_line) == (662, 1, 2)


@pytest.mark.parametrize(
    ("head", "tail"),
    [
        ("[    384", "]     0   384    15444      899   106496        0          -250 x"),
        ("[    384]     0", "-384    15444      899   106496        0          -250 x"),
    ],
)
def test_task_row_wrapped_inside_its_numbers_is_joined(head: str, tail: str) -> None:
    """The wrap splits the row match itself (longer than any keyword, so found from its '[')."""
    text = f"[  1.000000] {HEADERS['4.19']}\n[  1.000001] {head}\n{tail}\n"
    e = only(text)
    assert (e.pid, e.comm, e.line, e.end_line) == (384, "x", 2, 3)
    assert e.fields["oom_score_adj"] == -250


def test_wrapped_task_row_name_is_joined_within_comm_length() -> None:
    text = (
        f"Jun 11 20:17:20 h kernel: {HEADERS['4.19']}\n"
        "Jun 11 20:17:20 h kernel: [    268]     0   268    22862      267   208896        0  -250 systemd-jour\n"
        "nal\n"
    )
    assert only(text).comm == "systemd-journal"


def test_unrelated_tail_is_never_glued_onto_a_complete_record() -> None:
    text = ("[   60.757062] oom_reaper: unable to reap pid:1562 (a.out)\n"
            "(...snipped...)\n")
    result = parse_text(text)
    assert only(text).comm == "a.out"
    assert [s.line for s in result.skipped] == [2]
    unprefixed = "Killed process 5 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB\nshmem-rss:0kB\n"
    assert only(unprefixed).end_line == 2  # unprefixed but completes a known field list
    noise = "Killed process 5 (x)\nsomething else entirely\n"
    assert only(noise).end_line == 1


# -- duplicates -------------------------------------------------------------------------------


def test_the_same_precise_line_twice_counts_once_anywhere() -> None:
    line = "[   59.707294] Killed process 2020 (a.out) total-vm:8272kB, anon-rss:4160kB, file-rss:0kB"
    result = parse_text(f"{line}\n[ 60.0] other\n{line}\n")
    assert len(result.summary()["kills"]) == 1 and result.duplicate_count == 1
    assert result.skipped_count == 1


def test_second_resolution_duplicates_count_once_only_within_one_report() -> None:
    head = "Nov 24 19:52:22 h kernel: a invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0"
    kill = "Nov 24 19:52:22 h kernel: Killed process 7 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"
    pasted_twice = parse_text(f"{head}\n{kill}\n{kill}\n")
    assert len(pasted_twice.summary()["kills"]) == 1
    two_reports = parse_text(f"{head}\n{kill}\n{head.replace(' a ', ' b ')}\n{kill}\n")
    assert len(two_reports.summary()["kills"]) == 2
    assert two_reports.summary()["episodes"] == 2


def test_unstamped_lines_are_never_duplicates() -> None:
    kill = "Killed process 7 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB"
    assert len(parse_text(f"{kill}\n{kill}\n").summary()["kills"]) == 2


def test_ftrace_duplicate_ignores_the_display_only_context_comm() -> None:
    a = "           <...>-4886    [003] .N.1. 23828.572941: mark_victim: pid=14351"
    b = " GamepadUI Input-4886    [003] .N.1. 23828.572941: mark_victim: pid=14351"
    result = parse_text(f"{a}\n{b}\n")
    assert len(result.events) == 1 and result.duplicate_count == 1


# -- journal continuation lines and interleaved noise -----------------------------------------


def test_journal_continuation_lines_are_skipped_or_parsed_with_inherited_time() -> None:
    text = (
        "Jun 11 20:17:20 hyperv kernel: Mem-Info:\n"
        "Jun 11 20:17:20 hyperv kernel: active_anon:5909 inactive_anon:766016 isolated_anon:0\n"
        "                                active_file:29 inactive_file:5 isolated_file:0\n"
        "                                oom_reaper: reaped process 9 (x), now anon-rss:0kB, "
        "file-rss:0kB, shmem-rss:0kB\n"
    )
    result = parse_text(text)
    e = only(text)
    assert (e.kind, e.line, e.time) == (K.REAPED, 4, 14069840.0)
    assert [s.line for s in result.skipped] == [1, 2, 3]


def test_interleaved_noise_does_not_break_a_report() -> None:
    text = "\n".join([
        "[ 1.0] a invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0",
        "[ 1.0] usb 1-1: new high-speed USB device",
        "[ 1.1] CPU: 0 PID: 9 Comm: a Not tainted 5.4.0 #1",
        "random paste junk with Killed in it",
        "[ 1.2] Out of memory: Killed process 5 (x) total-vm:1kB, anon-rss:1kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0",
    ])
    result = parse_text(text)
    assert result.summary()["episodes"] == 1
    assert result.episodes[0].invoker_pid == 9
    assert [s.line for s in result.skipped] == [2, 4]


# -- ftrace layouts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "        allocate-502   [001] ....    91.836405: mark_victim: pid=502",
        "        allocate-502   [001] .N.1.    91.836405: mark_victim: pid=502",
        "        allocate-502   [001]    91.836405: mark_victim: pid=502",
        "        allocate-502   ( 502) [001] ....    91.836405: mark_victim: pid=502",
        "        allocate-502   (-----) [001] d..2.    91.836405: oom:mark_victim: pid=502",
        "        allocate-502  [001]  91.836405: mark_victim:          pid=502",
        "        allocate   502 [001]    91.836405: oom:mark_victim: pid=502",
        "        allocate 502/502 [001]    91.836405: oom:mark_victim: pid=502",
    ],
    ids=["trace_pipe", "5-char-flags", "no-flags", "tgid", "tgid-dashes", "trace-cmd",
         "perf", "perf-pid-tid"],
)
def test_each_ftrace_layout(line: str) -> None:
    e = only(line)
    assert (e.kind, e.pid, e.time, e.fields["ctx_comm"], e.fields["cpu"]) == (
        K.MARK_VICTIM, 502, 91.836405, "allocate", 1)


def test_ftrace_payloads() -> None:
    v = only(" GamepadUI Input-4886 [003] .N.1. 2.0: mark_victim: pid=7 comm=Web Content "
             "total-vm=100kB anon-rss=5kB file-rss:1kB shmem-rss:0kB uid=1000 pgtables=12kB "
             "oom_score_adj=300")
    assert (v.pid, v.comm, v.fields["ctx_comm"]) == (7, "Web Content", "GamepadUI Input")
    assert v.fields["anon_rss_kb"] == 5 and v.fields["oom_score_adj"] == 300
    ex = only("  a-1 [000] .... 3.0: sched_process_exit: comm=a (b) c pid=9 prio=120 group_dead=true")
    assert (ex.kind, ex.pid, ex.comm, ex.fields["group_dead"]) == (
        K.SCHED_PROCESS_EXIT, 9, "a (b) c", "true")
    adj = only("  a-1 [000] .... 3.0: oom_score_adj_update: pid=9 comm=x y oom_score_adj=-1000")
    assert (adj.pid, adj.comm, adj.fields["oom_score_adj"]) == (9, "x y", -1000)
    cr = only("  a-1 [000] .... 3.0: compact_retry: order=3 priority=COMPACT_PRIO_ASYNC "
              "compaction_result=withdrawn retries=0 max_retries=16 should_retry=1")
    assert (cr.pid, cr.comm, cr.fields["priority"], cr.fields["should_retry"]) == (
        1, "a", "COMPACT_PRIO_ASYNC", 1)
    zone = only("  a-1 [000] .... 3.0: reclaim_retry_zone: node=0 zone=DMA32    order=0 "
                "reclaimable=51 available=11134 min_wmark=11084 no_progress_loops=1 wmark_check=1")
    assert zone.fields["zone"] == "DMA32" and zone.fields["wmark_check"] == 1


def test_ftrace_records_wrapped_after_timestamp_or_inside_payload() -> None:
    text = (
        "           a.out-3786313 [028] ..... 629614.303007:\n"
        "sched_process_exit: comm=a.out pid=3786313 prio=120\n"
        "        allocate-502   [001] ....    91.836405: mark_victim:\n"
        "pid=502\n"
        "        allocate-502   [001] ....    91.836406: wake_reaper: pid=50\n"
        "2\n"
    )
    result = parse_text(text)
    assert [(e.kind, e.pid, e.line, e.end_line) for e in result.events] == [
        (K.SCHED_PROCESS_EXIT, 3786313, 1, 2),
        (K.MARK_VICTIM, 502, 3, 4),
        (K.WAKE_REAPER, 502, 5, 6),
    ]
    assert result.skipped_count == 0


def test_other_ftrace_events_are_skipped() -> None:
    text = ("  a.out-1 [120] d..1. 1.0: signal_generate: sig=9 errno=0 code=0 comm=a.out pid=2\n"
            "  a.out-1 [120] ..... 1.1: sched_process_fork: comm=a.out pid=1 child_comm=a.out\n")
    assert parse_text(text).events == ()


def test_wrapped_memcg_line_is_joined_and_a_cut_one_still_counts() -> None:
    text = ("[ 1.0] Task in /docker/abc killed as a result of limit\n"
            "of /docker\n"
            "[ 1.1] Task in /x killed\n")
    events = parse_text(text).events
    assert [(e.line, e.end_line, dict(e.fields)) for e in events] == [
        (1, 2, {"task_memcg": "/docker/abc", "limit_memcg": "/docker"}),
        (3, 3, {"task_memcg": "/x"}),
    ]


def test_mail_quoted_and_web_pasted_logs() -> None:
    text = (
        "> [  100.000000] Out of memory: Killed process 123 (foo) total-vm:1234kB, anon-rss:100kB,\n"
        "> file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:40kB oom_score_adj:200\n"
        "> > [  100.1] oom_reaper: reaped process 123 (foo), now anon-rss:0kB, file-rss:0kB, "
        "shmem-rss:0kB\n"
        ">         allocate-502   [001] ....    91.836405: mark_victim: pid=502\n"
        "[\xa0 100.2]\xa0Killed process\xa05 (a\xa0b) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n"
    )
    result = parse_text(text)
    assert [(e.kind, e.pid, e.comm, e.line, e.end_line) for e in result.events] == [
        (K.KILLED, 123, "foo", 1, 2),
        (K.REAPED, 123, "foo", 3, 3),
        (K.MARK_VICTIM, 502, None, 4, 4),
        (K.KILLED, 5, "a b", 5, 5),
    ]
    assert result.events[0].fields["oom_score_adj"] == 200 and result.skipped_count == 0
