"""What every command shares: the user-error type, input and variant loading, output helpers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..engine.runtime.choices import parse_input_text
from ..engine.scenario import ScenarioError, load_scenario
from ..engine.variants import VariantError, load_variant


class UserError(Exception):
    """A problem with what the user asked for: one line, no traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def variant_or_fail(name: str) -> Any:
    try:
        return load_variant(name)
    except VariantError as exc:
        raise UserError(str(exc)) from None


def read_input(text: str) -> bytes:
    """An input given as ``hex:…``, as a file path, or ``-`` for standard input (raw bytes)."""
    if text == "-":
        return sys.stdin.buffer.read()
    if text.startswith("hex:"):
        try:
            return parse_input_text(text)
        except ValueError as exc:
            raise UserError(f"bad input {text[:40]!r}: {exc}") from None
    path = Path(text)
    if not path.exists():
        raise UserError(f"input {text!r} is neither hex:<digits> nor an existing file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read input file {path}: {exc.strerror}") from None


def scenario_or_fail(path: str | None) -> Any:
    if path is None:
        return None
    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise UserError(str(exc)) from None


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=None, sort_keys=False) + "\n")
