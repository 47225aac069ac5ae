"""oomfuzz: deterministic fuzzing of races in the Linux OOM killer, oom_reaper and exit path."""

__version__ = "0.1.0"
