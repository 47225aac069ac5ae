"""Pinned schedules of the 2016 bugs, shared by the known-bug tests and the triage tests.

Each is an input in the format of engine/runtime/choices.py: scenario choices, then the few
deviations from the default schedule that make the race happen. They encode decision indices,
so a change to the model's scheduling points changes them: regenerate with
`oomfuzz explore --strategy dfs --scenario FILE` (or `--strategy pct` / `oomfuzz fuzz` for BZ-04).
"""

# shape=exit,mmap: T1 exits while T2 holds mmap_sem for write and allocates (1 preemption).
BZ01 = bytes.fromhex("0502000000000200")
# shape=run drivers=alloc,alloc mm=aio: the victim blocks in exit_aio, the reaper reaps it,
# TIF_MEMDIE stays (1 preemption).
BZ02 = bytes.fromhex("0500000103001c01")
# shape=run,run: (a) the reaper clears first, the victim's exit_mm decrements again;
# (b) the victim exits first, find_lock_task_mm finds the sibling, the reaper decrements again.
BZ03_A = bytes.fromhex("0501000000001101")
BZ03_B = bytes.fromhex("0501000000001700")
# shape=lockwait other=indep_big drivers=alloc,alloc: the first victim exits while the reaper
# still holds the slot; the second victim's request is dropped, and it is stuck for good.
# Found by random search (oomfuzz explore --strategy random, that scenario); the race needs the
# first victim's whole exit to fit between the reaper's wake-up and its slot release.
BZ04_MMOTM = bytes.fromhex(
    "050607010000000000020102000200020002000100010000000000000001010001000000020000000100020001000100"
    "020001000100000000000000040100010001000101020000000000000102010100020002000000000002020000010001"
    "000000000000020201010001000200000201000000010000000102000000010000000200"
)
BZ04_SEED = bytes.fromhex(
    "050607010000010100020001000300000100020100000000000000000000010001000100010000000000000002000100"
    "030003000000010000000300000000000200010000000001000101000101000000010000000100020100000000000000"
    "000100020000000100020001000002020102010100010001000101020000010200020000010202000000000100000101"
    "00010100050001000200000001000000"
)
# shape=fault other=indep_big drivers=alloc,alloc mm=aio: BZ-04 on seed-3of2 in 7 preemptions
# (found by `oomfuzz fuzz` through a PCT-drawn schedule, then minimised): the second victim
# blocks in exit_aio, its reaper request is dropped by the slot still holding the first.
BZ04_SEED_SHORT = bytes.fromhex("05040701030000010500130000000b0201020800")
# shape=run other=indep_aio drivers=alloc,freezer mm=aio: BZ-04 in 2 preemptions (found by
# `oomfuzz fuzz`, then by bounded DFS on the scenario): the reaper's last mmput of the first
# victim's mm waits in exit_aio while the slot still holds that victim, so the second victim's
# request is dropped; the second victim then waits in its own exit_aio, never reaped.
BZ04_SEED_TWO = bytes.fromhex("05000802030025010802")
BZ04_MMOTM_TWO = bytes.fromhex("05000802030028010402")
BZ04_TWO_SCENARIO = ("run", "indep_aio", "alloc,freezer", "aio")
# other=alloc_child sysctl=kill_allocating_task: BZ-07 on v4.6-rc1 (3 preemptions).
BZ07_RC1 = bytes.fromhex("050006000001000201020f02")
