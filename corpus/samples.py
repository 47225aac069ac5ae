"""The shared real-trace samples (`shared/traces/*.txt`): where they are and how to read them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HEADER_END = "# ---- end of header; verbatim sample follows ----"
ENV_SHARED_DIR = "OOMFUZZ_SHARED_DIR"


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample file: its header lines, the verbatim body and the body's first line number."""

    path: Path
    header: str
    body: str
    body_first_line: int

    @property
    def name(self) -> str:
        return self.path.name


def traces_dir(start: Path | None = None) -> Path | None:
    """`$OOMFUZZ_SHARED_DIR/traces`, else `shared/traces` beside the clone; None if absent.

    `start` is a file two levels below the clone's parent (default: this module, since the
    clone's root is the package: <clone>/corpus/samples.py -> <clone>/../shared/traces); tests
    pass their own file, which also works when the package is installed elsewhere."""
    env = os.environ.get(ENV_SHARED_DIR)
    candidates = [Path(env) / "traces"] if env else []
    here = (start or Path(__file__)).resolve()
    candidates.append(here.parents[2] / "shared" / "traces")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def load_sample(path: Path) -> Sample:
    """Split a sample on the exact header-end line (never on '#': bodies may contain it)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    marker = text.find(HEADER_END + "\n")
    if marker < 0:
        return Sample(path, "", text, 1)
    body_start = marker + len(HEADER_END) + 1
    header = text[:marker]
    return Sample(path, header, text[body_start:], header.count("\n") + 2)


def load_samples(directory: Path | None = None) -> list[Sample]:
    """Every `*.txt` sample, sorted by name; [] when the directory cannot be found."""
    directory = directory or traces_dir()
    if directory is None:
        return []
    return [load_sample(p) for p in sorted(directory.glob("*.txt"))]
