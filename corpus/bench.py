"""Parser throughput benchmark: the shared samples repeated into a large log, parsed on one core.

Each repetition shifts every pid (task rows, kill/reap lines, tracepoint payloads and contexts)
and every sub-second stamp (printk, ftrace), so repetitions stay distinct episodes and are not
mistaken for duplicated pastes. Run `python -m oomfuzz.corpus.bench [MB]`.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

from .parse import parse_text
from .samples import load_samples

_PID_STRIDE = 5_000_000
_TIME_STRIDE = 100_000.0
# Numbers that are pids or stamps, by the text around them (lookarounds keep the context).
_SHIFTABLE = re.compile(
    r"(?P<pid>(?<=pid=)\d+|(?<=pid:)\d+|(?<=process )\d+|(?<=PID: )\d+|(?<=Pid: )\d+"
    r"|(?<=\[) *\d+(?=\] +-?\d)|(?<=-)\d+(?= +[(\[]))"
    r"|(?P<ts>(?<=\[) *\d+\.\d+(?=\])|\d+\.\d{6}(?=:))"
)

Piece = str | Callable[[int], str]


def _template(body: str) -> list[Piece]:
    """Literal text and functions of the repetition number, in order."""
    pieces: list[Piece] = []
    last = 0
    for m in _SHIFTABLE.finditer(body):
        pieces.append(body[last : m.start()])
        token = m.group()
        width = len(token)
        if m.group("pid") is not None:
            base = int(token)
            pieces.append(lambda k, b=base, w=width: str(b + k * _PID_STRIDE).rjust(w))
        else:
            value = float(token)
            decimals = len(token.rsplit(".", 1)[1])
            pieces.append(
                lambda k, v=value, w=width, d=decimals: f"{v + k * _TIME_STRIDE:.{d}f}".rjust(w)
            )
        last = m.end()
    pieces.append(body[last:])
    return pieces


def build_log(min_megabytes: float) -> str:
    """At least `min_megabytes` MB of log text made of shifted copies of every sample."""
    bodies = [s.body if s.body.endswith("\n") else s.body + "\n" for s in load_samples()]
    if not bodies:
        raise RuntimeError("no trace samples found: set OOMFUZZ_SHARED_DIR")
    templates = [_template(b) for b in bodies]
    target = int(min_megabytes * 1_000_000)
    chunks: list[str] = []
    size, k = 0, 0
    while size < target:
        for pieces in templates:
            chunk = "".join(p if isinstance(p, str) else p(k) for p in pieces)
            chunks.append(chunk)
            size += len(chunk.encode("utf-8"))
        k += 1
    return "".join(chunks)


def bench_parse(min_megabytes: int = 100) -> dict[str, float | int]:
    """Parse a log of at least `min_megabytes` MB once and report size, time and counts."""
    text = build_log(min_megabytes)
    megabytes = len(text.encode("utf-8")) / 1_000_000
    start = time.perf_counter()
    result = parse_text(text, source="bench")
    seconds = time.perf_counter() - start
    return {
        "megabytes": round(megabytes, 3),
        "seconds": round(seconds, 3),
        "megabytes_per_second": round(megabytes / seconds, 2) if seconds > 0 else float("inf"),
        "events": len(result.events),
        "episodes": len(result.episodes),
    }


def main(argv: list[str]) -> int:
    size = int(argv[0]) if argv and argv[0].isdigit() else 100
    try:
        report = bench_parse(size)
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v}" for k, v in report.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
