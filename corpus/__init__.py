"""Real kernel traces (dmesg, ftrace) parsed into OOM episodes and turned into fuzz seeds."""
