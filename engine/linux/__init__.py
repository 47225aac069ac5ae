"""The v4.5 kernel model, one module per C file, the base every variant patches."""
