"""The corpus directory: one file per interesting input, named by the sha256 of its bytes.

The directory persists between campaigns and is how a campaign resumes. It is only read
through ``scan_corpus``, which never trusts it: anything that is not a regular, readable file
of at most ``MAX_INPUT_LEN`` bytes named by its own sha256 is garbage, reported in one warning
line and skipped (never deleted, never fed to libFuzzer). Writes go through a temporary file
and ``os.replace``, so a killed campaign leaves no half-written input.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.scenario import DIMENSIONS

MAX_INPUT_LEN = 512
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"


class CorpusError(Exception):
    """A corpus directory that cannot be used at all; the message is one line for the user."""


@dataclass
class CorpusScan:
    inputs: list[bytes] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def open_corpus_dir(path: str | os.PathLike[str]) -> Path:
    """The corpus directory, created if missing; CorpusError if it cannot be used."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise CorpusError(f"corpus {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorpusError(f"cannot create corpus directory {path}: {exc.strerror}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise CorpusError(f"corpus directory {path} is not readable and writable")
    return path


def _check_entry(entry: os.DirEntry[str]) -> tuple[bytes | None, str | None]:
    """The input an entry holds, or why it is garbage."""
    if not entry.is_file(follow_symlinks=False):
        return None, "not a regular file"
    if not _SHA256.match(entry.name):
        return None, "not named by the sha256 of its contents"
    try:
        size = entry.stat(follow_symlinks=False).st_size
        if size > MAX_INPUT_LEN:
            return None, f"{size} bytes, longer than the {MAX_INPUT_LEN}-byte input limit"
        with open(entry.path, "rb") as handle:
            data = handle.read(MAX_INPUT_LEN + 1)
    except OSError as exc:
        return None, f"unreadable ({exc.strerror})"
    if digest(data) != entry.name:
        return None, "contents do not match its sha256 name (corrupt)"
    return data, None


def scan_corpus(path: Path) -> CorpusScan:
    """Every valid input in the directory (sorted by name) and one warning per garbage entry."""
    scan = CorpusScan()
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        raise CorpusError(f"cannot read corpus directory {path}: {exc.strerror}") from None
    for entry in entries:
        if entry.name.startswith(_TEMP_PREFIX):
            continue
        data, problem = _check_entry(entry)
        if problem is not None:
            scan.warnings.append(f"corpus: skipping {entry.path}: {problem}")
        elif data is not None:
            scan.inputs.append(data)
    return scan


def write_input(path: Path, data: bytes) -> bool:
    """Store ``data`` as ``path/<sha256>``; False if it was already there."""
    target = path / digest(data)
    if target.exists():
        return False
    temp = path / f"{_TEMP_PREFIX}{target.name}.{os.getpid()}"
    with open(temp, "wb") as handle:
        handle.write(data)
    os.replace(temp, target)
    return True


def scenario_seeds() -> list[bytes]:
    """One zero-preemption input per value of each scenario dimension, others at 0."""
    seeds = [bytes([len(DIMENSIONS)]) + bytes(len(DIMENSIONS))]
    for i, (_, values) in enumerate(DIMENSIONS):
        for value in range(1, len(values)):
            data = bytearray(len(DIMENSIONS))
            data[i] = value
            seeds.append(bytes([len(DIMENSIONS)]) + bytes(data))
    return seeds
