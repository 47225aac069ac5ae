"""Kernel versions as patches: the registry of shipped variants and the variant loader.

A variant module holds ``NAME``, ``PARENT`` (the variant it patches, None for the base),
``SUMMARY``, ``KNOWN_BUGS`` (bug id -> the invariants that bug violates on this variant) and
the model functions its patch changed, under their kernel names (a patch that restores an
older function names it in ``REUSE`` instead of copying it). Loading a variant builds a
``Kernel`` subclass: the parent's class plus this module's functions. A user's own patch under
review is such a module in a file, loaded with ``load_variant("path/to/patch.py")``; nothing
else is imported or executed on a variant's behalf.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..kernel import Kernel

SHIPPED = (
    "v4_5",
    "mmotm_2016_01",
    "seed_3of2",
    "v4_6_rc1",
    "v4_6",
    "v4_7",
    "v4_8",
    "v4_9",
)


class VariantError(Exception):
    """A variant that does not exist or cannot be loaded; the message is for the user."""


_cache: dict[str, type[Kernel]] = {}


def _module_functions(module: ModuleType) -> dict[str, Any]:
    """The model functions a module defines: public names and kernel ``__names``."""
    functions = {}
    for name, value in vars(module).items():
        if not inspect.isfunction(value) or value.__module__ != module.__name__:
            continue
        if name.startswith("_") and not name.startswith("__"):
            continue
        if name.startswith("__") and name.endswith("__"):
            continue
        functions[name] = value
    return functions


def _citation(func: Any) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.splitlines()[0] if doc else func.__name__


def build_variant(module: ModuleType, parent: type[Kernel] | None, modules: tuple = ()) -> type[Kernel]:
    """The Kernel subclass of ``module``: parent's functions, overridden by the module's."""
    namespace: dict[str, Any] = {}
    for source in (*modules, module):
        namespace.update(_module_functions(source))
    # A patch that restores older code names those functions in REUSE instead of copying them.
    namespace.update({func.__name__: func for func in getattr(module, "REUSE", ())})
    citations = dict(parent.CITATIONS) if parent is not None else {}
    citations.update({name: _citation(func) for name, func in namespace.items()})
    namespace.update(
        NAME=module.NAME,
        PARENT=getattr(module, "PARENT", None),
        SUMMARY=getattr(module, "SUMMARY", ""),
        KNOWN_BUGS=dict(getattr(module, "KNOWN_BUGS", {})),
        CITATIONS=citations,
        SOURCE=getattr(module, "__file__", ""),
    )
    namespace.update(getattr(module, "ATTRIBUTES", {}))
    if "LIVENESS" in vars(module):
        namespace["LIVENESS"] = module.LIVENESS
    base = parent if parent is not None else Kernel
    return type(f"Kernel_{module.NAME}", (base,), namespace)


def _load_module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def _from_module(module: ModuleType) -> type[Kernel]:
    if not isinstance(getattr(module, "NAME", None), str):
        raise VariantError(f"{module.__name__}: a variant module must define NAME")
    parent_name = getattr(module, "PARENT", None)
    parent = load_variant(parent_name) if parent_name else None
    return build_variant(module, parent, tuple(getattr(module, "MODULES", ())))


def _shipped_modules() -> list[ModuleType]:
    here = Path(__file__).parent
    return [_load_module(name) for name in SHIPPED if (here / f"{name}.py").exists()]


def variant_names() -> list[str]:
    """The shipped variants, oldest first."""
    return [module.NAME for module in _shipped_modules()]


def load_variant(name: str) -> type[Kernel]:
    """A shipped variant by name (``v4.6-rc1``), or a variant file by path (``my_patch.py``)."""
    if name in _cache:
        return _cache[name]
    for module in _shipped_modules():
        if module.NAME == name:
            cls = _from_module(module)
            _cache[name] = cls
            return cls
    if name.endswith(".py"):
        cls = _load_file(Path(name))
        _cache[name] = cls
        return cls
    raise VariantError(f"unknown variant {name!r}; shipped variants: {', '.join(variant_names())}")


def _load_file(path: Path) -> type[Kernel]:
    """A variant file the operator named explicitly."""
    if not path.is_file():
        raise VariantError(f"variant file {path} does not exist")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    module_name = f"oomfuzz_user_variant_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise VariantError(f"cannot load variant file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except VariantError:
        raise
    except Exception as exc:  # the user's file: report it, do not crash
        raise VariantError(f"variant file {path} failed to load: {type(exc).__name__}: {exc}") from None
    if getattr(module, "PARENT", None) is None:
        raise VariantError(f"variant file {path} must set PARENT to a shipped variant it patches")
    return _from_module(module)

