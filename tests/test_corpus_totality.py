"""Totality: any text, any bytes and any mangled real sample parse without raising, consistently."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oomfuzz.corpus.consistency import check_consistency
from oomfuzz.corpus.parse import (
    TraceFileError, decode_trace_bytes, parse_bytes, parse_file, parse_text,
)
from oomfuzz.corpus.samples import load_samples, traces_dir

TRACES = traces_dir(Path(__file__))  # beside the clone, or $OOMFUZZ_SHARED_DIR/traces
SAMPLES = load_samples(TRACES) if TRACES else []
# Fragments that steer random text towards the interesting paths (prefixes, keywords, parens).
FRAGMENTS = [
    "[  12.345678] ", "[Sat Apr 27 22:56:09 2019] ", "Jun 11 20:17:20 host kernel: ", "<4>",
    "6,1,2,-;", "Killed process ", "Kill process ", " invoked oom-killer: ", "oom-kill:",
    "oom_reaper: reaped process ", "oom_reaper: unable to reap pid:", "Task in ", " (", ") ",
    "total-vm:", "kB, ", "score ", " or sacrifice child", "[  pid  ]", "[  123]", " name",
    "mark_victim: pid=", "sched_process_exit: comm=", " pid=", " prio=", "-123 [001] .... ",
    "12.5: ", "\n", "\n", "\n", "    ", ",", "=", ":", "99999999999999999999999", "-", "\r\n",
]

text_like_logs = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=60
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    check_consistency(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_like_logs)
def test_log_shaped_text_is_consistent(text: str) -> None:
    check_consistency(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_decoded_leniently_never_raise(data: bytes) -> None:
    parse_text(data.decode("utf-8", errors="replace"))
    parse_text(data)  # type: ignore[arg-type]  # bytes are decoded the same way


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        i = rng.randrange(len(lines)) if lines else 0
        if not lines:
            lines.append("")
        elif op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])  # duplicate a line elsewhere
        elif op == 2 and lines[i]:
            cut = rng.randrange(len(lines[i]))
            lines[i : i + 1] = [lines[i][:cut], lines[i][cut:]]  # hard wrap
        elif op == 3 and lines[i]:
            pos = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:pos] + chr(rng.randrange(32, 0x2FF)) + lines[i][pos + 1 :]
        elif op == 4 and i + 1 < len(lines):
            lines[i] = lines[i] + lines.pop(i + 1)  # join two records
        else:
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]  # truncate
    return "\n".join(lines)


@pytest.mark.skipif(not SAMPLES, reason="shared trace samples not found: set OOMFUZZ_SHARED_DIR")
@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=len(SAMPLES) - 1 if SAMPLES else 0), st.randoms())
def test_mutated_real_samples_never_raise_and_stay_consistent(
    index: int, rng: random.Random
) -> None:
    check_consistency(_mutate(SAMPLES[index].body, rng))


def test_pathological_lines_stay_fast() -> None:
    """Inputs that make naive regexes backtrack quadratically must still parse promptly."""
    n = 20000
    nasty = [
        "x" + " " * n + "y: mark_victim: pid=1",  # perf layout: comm / pid separator
        "x-1" + " " * n + "[0] mark_victim: pid=1",  # trace_pipe layout: pid / cpu separator
        "-1 " * (n // 2) + "mark_victim: pid=1",
        "CPU: 0 PID: 1 Comm: " + " Not tainted" * (n // 4),
        "CPU: 0 PID: 1 Comm: x Tainted: " + "A " * n,
        "oom-kill:" + "task=" * n,
        "Killed process 1 (x) " + "a" * n,  # key:value scan over one long word
        "Killed process 1 (" + "(" * n,
        "[  pid  ]" + " x" * n,
        "[ 1]" + " 1" * n + " " * n,
        "\n".join(["   oom_reaper: unable to reap pid:1 (x)"] * 3000),  # indented, no time above
    ]
    for line in nasty:
        start = time.perf_counter()
        parse_text(line + "\n" + line)
        assert time.perf_counter() - start < 5.0, line[:60]  # quadratic: > 10 s


# -- parse_file errors ------------------------------------------------------------------------


def test_parse_file_reads_text_and_names_the_source(tmp_path: Path) -> None:
    path = tmp_path / "kern.log"
    path.write_bytes(b"[ 1.0] Killed process 5 (x\xff) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n")
    result = parse_file(path)
    assert result.source == str(path)
    assert result.summary()["kills"] == [{"pid": 5, "comm": "x\ufffd"}]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00"), "binary data"),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00junk"), "compressed"),
    ],
    ids=["missing", "directory", "binary", "gzip"],
)
def test_parse_file_raises_one_clear_error(tmp_path: Path, setup, message: str) -> None:
    path = tmp_path / "trace.txt"
    setup(path)
    with pytest.raises(TraceFileError) as info:
        parse_file(path)
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


def test_parse_file_refuses_devices_and_decodes_utf16_and_bom(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match="not a regular file"):
        parse_file("/dev/zero")  # would otherwise read forever
    line = "[ 1.0] Killed process 5 (ü) total-vm:1kB, anon-rss:1kB, file-rss:0kB\n"
    for name, data in (("u16.log", line.encode("utf-16")), ("bom.log", line.encode("utf-8-sig"))):
        path = tmp_path / name
        path.write_bytes(data)
        assert parse_file(path).summary()["kills"] == [{"pid": 5, "comm": "ü"}]


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"a\r\nb\r\n", "a\nb\n"),
        (b"a\rb\n", "a\rb\n"),  # a lone CR is no line end
        (b"\xef\xbb\xbf[ 1.0] x\n", "[ 1.0] x\n"),  # UTF-8 byte order mark
        (b"a\xffb\xc3", "a\ufffdb\ufffd"),  # invalid and truncated UTF-8
        ("\u00fc\r\n".encode("utf-16"), "\u00fc\n"),  # UTF-16 with its mark, either order
        (b"\xfe\xff" + "\u00fc".encode("utf-16-be"), "\u00fc"),
        (b"\xff\xfe\x00", "\ufffd"),  # odd UTF-16
        (b"", ""),
    ],
)
def test_decode_trace_bytes(data: bytes, text: str) -> None:
    assert decode_trace_bytes(data) == text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decode_trace_bytes_never_raises_and_keeps_no_mark_or_crlf(data: bytes) -> None:
    text = decode_trace_bytes(data)
    if not data.startswith((b"\xef\xbb\xbf\xef\xbb\xbf", b"\xff\xfe\xff\xfe", b"\xfe\xff\xfe\xff")):
        assert not text.startswith("\ufeff")  # (a second mark is text, not a mark)
    assert "\r\n" not in text.replace("\r\r\n", "")  # CR CR LF keeps its stray CR


def test_parse_bytes_refuses_what_parse_file_refuses() -> None:
    assert parse_bytes(b"\xef\xbb\xbf[ 1.0] Killed process 5 (x) total-vm:1kB, anon-rss:1kB, "
                       b"file-rss:0kB\r\n", source="<stdin>").summary()["kills"] == [
        {"pid": 5, "comm": "x"}]
    for data, message in ((b"\x1f\x8b\x08junk", "<stdin>: compressed data"),
                          (b"\x7fELF\x00\x00", "<stdin>: binary data")):
        with pytest.raises(TraceFileError, match=message):
            parse_bytes(data, source="<stdin>")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_parse_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "secret.log"
    path.write_text("x")
    path.chmod(0)
    with pytest.raises(TraceFileError, match="permission denied"):
        parse_file(path)
