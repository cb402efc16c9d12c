"""Typed job parameters: how training code declares them and how a run's values are checked.

Declared in ``assethub.yaml`` (or an algorithm's registration) under ``params``::

    params:
      epochs:     {type: int, default: 3, min: 1, help: passes over the training data}
      lr:         {type: float, default: 0.001, min: 0}
      augment:    {type: bool, default: false}
      optimizer:  {type: choice, choices: [adam, sgd], default: adam}
      run_name:   {type: str, default: ""}
      batch_size: 32            # a plain default: the type is the default's

:func:`declare` reads such a mapping, :func:`resolve` checks a run's values against it (an
unknown name, a value of the wrong type or out of its choices or bounds is refused, with what
was expected) and fills in the defaults. Values given as text (``--param epochs=3``) are
converted. Standard library only: the server, the CLI and the flows all use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assethub.errors import JobSpecError

__all__ = ["TYPES", "Param", "ParamError", "declare", "env_name", "env_vars", "resolve", "to_spec"]

TYPES = ("int", "float", "bool", "str", "choice")
_KEYS = {"type", "default", "choices", "min", "max", "help", "description", "required"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class ParamError(JobSpecError):
    """A parameter's declaration or a run's value for it is not acceptable."""


@dataclass(frozen=True)
class Param:
    """One declared parameter."""

    name: str
    type: str  # one of TYPES
    default: Any = None  # None: required (no default)
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def describe(self) -> str:
        """``int, default 3, 1..`` — for help texts and tables."""
        kind = "choice of " + "|".join(map(str, self.choices)) if self.type == "choice" else self.type
        parts = [kind, "required" if self.required else f"default {_show(self.default)}"]
        if self.min is not None or self.max is not None:
            parts.append(f"{'' if self.min is None else _show(self.min)}.."
                         f"{'' if self.max is None else _show(self.max)}")
        return ", ".join(parts)

    def check(self, value: Any) -> Any:
        """``value`` as this parameter's type (text converted), or :class:`ParamError`."""
        what = f"parameter {self.name!r}"
        v = _convert(self.type, value, self.choices)
        if v is _BAD:
            expected = ("one of " + ", ".join(map(_show, self.choices)) if self.type == "choice"
                        else f"a{'n' if self.type == 'int' else ''} {self.type}")
            raise ParamError(f"{what} must be {expected}, not {_show(value)}")
        if self.type in ("int", "float"):
            if self.min is not None and v < self.min:
                raise ParamError(f"{what} must be at least {_show(self.min)}, not {_show(v)}")
            if self.max is not None and v > self.max:
                raise ParamError(f"{what} must be at most {_show(self.max)}, not {_show(v)}")
        return v

    def to_spec(self) -> dict[str, Any]:
        """The declaration as ``assethub.yaml`` writes it (and the API sends it)."""
        out: dict[str, Any] = {"type": self.type}
        if self.default is not None:
            out["default"] = self.default
        if self.choices:
            out["choices"] = list(self.choices)
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.help:
            out["help"] = self.help
        return out


_BAD = object()


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _convert(kind: str, value: Any, choices: Iterable[Any] = ()) -> Any:
    """``value`` as ``kind``, or _BAD."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        return _BAD
    if kind == "int":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _BAD
        return _BAD
    if kind == "float":
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int | float):
            v = float(value)
        elif isinstance(value, str):
            try:
                v = float(value.strip())
            except ValueError:
                return _BAD
        else:
            return _BAD
        return v if math.isfinite(v) else _BAD
    if kind == "str":
        return value if isinstance(value, str) else _BAD if isinstance(value, dict | list) else str(value)
    if kind == "choice":
        options = list(choices)
        if value in options and not isinstance(value, bool):
            return value
        for option in options:  # text from the command line: "3" for 3, "true" for True
            if isinstance(value, str) and not isinstance(option, str):
                converted = _convert(type(option).__name__, value)
                if converted is not _BAD and converted == option:
                    return option
            elif isinstance(option, str) and not isinstance(value, str) and str(value) == option:
                return option
        return _BAD
    return _BAD


def _infer(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    return ""


def declare(spec: Mapping[str, Any] | None, where: str = "params") -> dict[str, Param]:
    """The declared parameters of ``spec`` (``assethub.yaml``'s ``params``); a declaration that
    makes no sense (unknown type, a default that is not of it, choices without values) is a
    :class:`ParamError` naming ``where`` and the parameter."""
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ParamError(f"{where} must be a mapping of name: declaration")
    out: dict[str, Param] = {}
    for name, entry in spec.items():
        name = str(name)
        here = f"{where}: parameter {name!r}"
        if not _NAME.fullmatch(name):
            raise ParamError(f"{here}: a name is letters, digits, '_', '-' or '.', starting with a letter")
        if not isinstance(entry, Mapping):  # a plain default
            kind = _infer(entry)
            if not kind:
                raise ParamError(f"{here}: a plain default must be a number, true/false or text, "
                                 f"not {_show(entry)}; declare {{type: ..., default: ...}} instead")
            out[name] = Param(name, kind, entry)
            continue
        unknown = set(entry) - _KEYS
        if unknown:
            raise ParamError(f"{here} has unknown key(s) {', '.join(sorted(unknown))}; "
                             f"expected {', '.join(sorted(_KEYS - {'description', 'required'}))}")
        choices = entry.get("choices")
        kind = str(entry.get("type") or ("choice" if choices else _infer(entry.get("default"))))
        if kind not in TYPES:
            raise ParamError(f"{here}: type must be one of {', '.join(TYPES)}, not {_show(kind)}")
        if kind == "choice":
            if not isinstance(choices, list | tuple) or not choices or \
                    any(isinstance(c, dict | list) for c in choices):
                raise ParamError(f"{here}: a choice needs 'choices', a list of values")
        elif choices is not None:
            raise ParamError(f"{here}: 'choices' is only for type choice")
        bounds: dict[str, float | None] = {}
        for key in ("min", "max"):
            b = entry.get(key)
            if b is not None and (kind not in ("int", "float") or isinstance(b, bool)
                                  or not isinstance(b, int | float)):
                raise ParamError(f"{here}: '{key}' must be a number (and only for int or float)")
            bounds[key] = b
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise ParamError(f"{here}: min is above max")
        param = Param(name, kind, None, tuple(choices or ()), bounds["min"], bounds["max"],
                      str(entry.get("help") or entry.get("description") or ""))
        default = entry.get("default")
        if default is not None:
            try:
                default = param.check(default)
            except ParamError as e:
                raise ParamError(f"{here}: the default does not fit: {e}") from None
        elif kind == "bool":
            default = False
        out[name] = Param(name, kind, default, param.choices, param.min, param.max, param.help)
    return out


def resolve(declared: Mapping[str, Param], given: Mapping[str, Any] | None, *,
            where: str = "") -> dict[str, Any]:
    """The run's parameters: ``given`` checked against ``declared`` (each converted to its type)
    over the defaults. With nothing declared, ``given`` passes as it is. Refused, naming every
    problem at once: an unknown name, a bad value, a required parameter left out."""
    given = dict(given or {})
    if not declared:
        return given
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in given.items():
        param = declared.get(name)
        if param is None:
            problems.append(f"unknown parameter {name!r} (declared: {', '.join(sorted(declared))})")
            continue
        try:
            out[name] = param.check(value)
        except ParamError as e:
            problems.append(str(e))
    for name, param in declared.items():
        if name not in given:
            if param.required:
                problems.append(f"parameter {name!r} is required ({param.describe()})")
            else:
                out[name] = param.default
    if problems:
        raise ParamError(("; ".join(problems)) + (f" ({where})" if where else ""))
    return out


def env_name(name: str) -> str:
    """The environment variable that carries parameter ``name``: ``batch-size`` -> ``BATCH_SIZE``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


# names a parameter may not take over as a variable (the contract's own and the process's)
_RESERVED = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "LANG", "TZ", "TMPDIR",
             "PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "LD_LIBRARY_PATH")


def env_vars(params: Mapping[str, Any]) -> dict[str, str]:
    """Each parameter as an upper-case variable (``EPOCHS=3``, ``AUGMENT=true``); names that
    would shadow the contract (``ASSETHUB_*``, ``MLFLOW_*``) or the process (``PATH`` ...)
    are left out (the values stay in ``ASSETHUB_PARAMS``)."""
    out: dict[str, str] = {}
    for name, value in params.items():
        var = env_name(str(name))
        if var in _RESERVED or var.startswith(("ASSETHUB_", "MLFLOW_", "PREFECT_", "LC_", "PYTHON")):
            continue
        if isinstance(value, bool):
            out[var] = "true" if value else "false"
        elif isinstance(value, int | float | str):
            out[var] = str(value)
        else:
            import json

            out[var] = json.dumps(value, sort_keys=True)
    return out


def to_spec(declared: Mapping[str, Param]) -> dict[str, dict[str, Any]]:
    """The declarations as a JSON-able mapping (for the API and for display)."""
    return {name: p.to_spec() for name, p in declared.items()}
