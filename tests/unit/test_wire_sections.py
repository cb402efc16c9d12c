"""`assethub.wire` loads a section module with the first of its names used; every public name of
every section is reachable from the package, and a section loads only when asked for."""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import subprocess
import sys

import assethub.wire as wire


def test_every_public_name_of_every_section_is_offered_by_the_package() -> None:
    sections = [m.name for m in pkgutil.iter_modules(wire.__path__) if m.name.startswith("_")]
    assert sections
    for section in sections:
        module = importlib.import_module(f"assethub.wire.{section}")
        own = [n for n, v in vars(module).items() if not n.startswith("_")
               and getattr(v, "__module__", module.__name__) == module.__name__
               and (dataclasses.is_dataclass(v) or n.isupper() or n == "Operation")]
        for name in own:
            assert wire._SECTION[name] == section, name
            assert getattr(wire, name) is getattr(module, name)
            assert name in wire.__all__
    assert sorted(wire.__all__) == sorted({*wire._SECTION, "Lineage"})


def test_a_name_loads_its_section_only() -> None:
    code = ("import json, sys\n"
            "from assethub.wire import UserView\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('assethub.wire'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["assethub.wire", "assethub.wire._identity"]
