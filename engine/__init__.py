"""The deterministic model of the OOM killer, oom_reaper and exit path, and the runtime it runs on."""
