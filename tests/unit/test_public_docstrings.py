"""Every public name of coord's API has a docstring: everything exported by
``coord``, ``coord.aio``, ``coord.recipes`` and ``coord.acl`` (kazoo's
``kazoo.security`` twin), and every public method and property of the
exported classes (inherited ones count, dunders do not)."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = ("coord", "coord.aio", "coord.recipes", "coord.acl")


def _undocumented_members(cls: type) -> list[str]:
    missing = []
    for klass in cls.__mro__:
        if klass is object or not klass.__module__.startswith("coord"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if isinstance(func, property):
                func = func.fget
            elif not inspect.isfunction(func):
                continue
            # documented here or by the same name on a base class (an override inherits its meaning)
            docs = [inspect.getdoc(getattr(k, name, None)) for k in cls.__mro__ if name in vars(k)]
            if not any(d and d.strip() for d in docs) and not (func.__doc__ or "").strip():
                missing.append(f"{cls.__name__}.{name} ({klass.__module__})")
    return missing


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_has_a_docstring(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert (module.__doc__ or "").strip(), f"{module_name} has no module docstring"
    missing: list[str] = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        doc = obj.__doc__ if not inspect.isclass(obj) else vars(obj).get("__doc__")
        if not (doc or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            missing.extend(_undocumented_members(obj))
    assert not missing, f"public API without a docstring in {module_name}: {sorted(set(missing))}"
