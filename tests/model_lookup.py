"""Finding a task or an mm of an execution by its role or name (shared by the variant tests)."""

from typing import Any


def task(ex: Any, role: str) -> Any:
    """The task with ``role``, released or not."""
    return next(t for t in ex.kernel.all_tasks if t.role == role)


def mm(ex: Any, name: str) -> Any:
    return next(m for m in ex.kernel.mms if m.name == name)
