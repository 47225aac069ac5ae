"""fs/aio.c: exit_aio, the part of mm teardown that can wait for I/O."""

from __future__ import annotations

from typing import Any

from ..runtime.primitives import schedule_timeout, wait_event

AIO_IO_TICKS = 5


def exit_aio(k: Any, mm: Any) -> Any:
    """fs/aio.c:exit_aio() @ v4.5: kill the mm's AIO contexts and wait for in-flight requests.

    # MODEL: ``aio_pending`` says what the in-flight requests wait for. "memory": their
    # completion needs an allocation, so exit_aio waits until free memory is above the
    # watermark (the unbounded __mmput of BZ-10). "io": they complete after a while (a few
    # ticks of I/O), the slow-but-finite teardown of BZ-13.
    """
    if not mm.aio_pending:
        return
    if mm.aio_pending == "memory":
        mm.ghost_teardown_waits_memory = True
        yield from wait_event(k.memory_wait, k.memory_available)
        mm.ghost_teardown_waits_memory = False
    else:
        yield from schedule_timeout(k.m, AIO_IO_TICKS, "exit_aio:wait_for_io")
    mm.aio_pending = None
