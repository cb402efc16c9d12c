"""Typer's help and error rendering (``typer.rich_utils``) without Markdown and tracebacks.

``typer.rich_utils`` imports ``rich.markdown`` (with markdown-it) and ``rich.traceback`` (with
rich.pretty, rich.syntax, pygments and attrs) at its top, yet uses Markdown only in the
"markdown" markup mode, which the CLI does not use, and tracebacks only for an unexpected crash.
Loading them took about a third of ``assethub --help``. :func:`defer_markdown_and_tracebacks`
has ``typer.rich_utils`` load with stand-ins for the two classes that import the real ones when
used, so help, errors and crash reports look exactly as before.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

_TARGET = "typer.rich_utils"


class _Markdown:
    """Stands in for ``rich.markdown.Markdown``: builds the real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.markdown import Markdown

        return Markdown(*args, **kwargs)


class _Traceback:
    """Stands in for ``rich.traceback.Traceback``: builds the real one."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback(*args, **kwargs)

    @classmethod
    def from_exception(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback.from_exception(*args, **kwargs)


class _Loader(importlib.abc.Loader):
    """Runs the real loader of ``typer.rich_utils`` with the stand-ins in place."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        stand_ins = {"rich.markdown": ("Markdown", _Markdown),
                     "rich.traceback": ("Traceback", _Traceback)}
        added = []
        for name, (attr, cls) in stand_ins.items():
            if name not in sys.modules:
                stand_in = types.ModuleType(name)
                setattr(stand_in, attr, cls)
                sys.modules[name] = stand_in
                added.append(name)
        try:
            self.real.exec_module(module)
        finally:
            for name in added:
                del sys.modules[name]


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``typer.rich_utils`` once, through the other finders, and wraps its loader."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def defer_markdown_and_tracebacks() -> None:
    """Have ``typer.rich_utils``, when it loads, not load Markdown and tracebacks with it."""
    if _TARGET in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
