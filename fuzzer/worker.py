"""The fuzzing process: ``python -m oomfuzz.fuzzer.worker CONFIG_JSON`` runs one job.

libFuzzer owns the process it runs in (it exits the process when it is done), so every Atheris
job is a child process of its own. Coverage instrumentation has to happen when a module is
first imported, so this module imports nothing from oomfuzz at the top: ``instrument_model``
imports the kernel model (``engine.linux``, ``engine.variants``) under
``atheris.instrument_imports`` first, with every other engine module (the runtime, the
loader, the invariants) excluded, and only then is the job code imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODEL_PACKAGES = ("oomfuzz.engine.linux", "oomfuzz.engine.variants")


def engine_modules() -> tuple[list[str], list[str]]:
    """(model modules, other engine modules), by name, found on disk without importing them."""
    root = Path(__file__).resolve().parent.parent / "engine"
    model, other = [], []
    for path in sorted(root.rglob("*.py")):
        parts = ("oomfuzz", "engine", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        is_model = any(name.startswith(p + ".") for p in MODEL_PACKAGES)
        (model if is_model else other).append(name)
    return model, other


def instrument_model(trace_dataflow: bool = False) -> list[str]:
    """Import the kernel model instrumented for coverage; returns the instrumented modules.

    ``atheris.instrument_imports`` always traces comparisons too (a callback per compare);
    the model's comparisons are on decoded state, not on input bytes, so they teach libFuzzer
    nothing and halve the execution rate: the same import hook is used without them.
    """
    import importlib

    from atheris.import_hook import HookManager

    model, other = engine_modules()
    already = [name for name in model if name in sys.modules]
    if already:
        raise RuntimeError(f"model modules imported before instrumentation: {', '.join(already)}")
    with HookManager({"oomfuzz"}, set(other), enable_loader_override=True, trace_dataflow=trace_dataflow):
        for name in model:
            importlib.import_module(name)
    return model


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m oomfuzz.fuzzer.worker CONFIG_JSON\n")
        return 2
    from .config import JobConfig

    config = JobConfig.from_json(argv[1])
    if config.engine == "atheris":
        instrument_model()
    from .job import run_job

    return run_job(config)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
