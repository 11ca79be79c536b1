"""What `./dev demo` installs is enough to run a node: every third-party module that the
platform's packages import when they load (module-level imports) belongs to a distribution the
project's own dependencies install (named there, or required by one of those), not only to an
extra such as ``test`` (where the suite, which installs the extras, would never notice it missing)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("acd", "asr", "authguard", "callcenter", "cluster", "ivr", "recordings", "sip_bridge", "softphone_web", "campaigns", "chat")
EXTRA_ONLY = {"callcenter/devcluster.py": {"psycopg"}}
"""Modules only ``./dev cluster`` loads, which installs the ``cluster`` extra."""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _installed_with(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, without their extras."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [_name(r) for r in needs if "extra ==" not in r]
    return found


def _loaded_imports(path: Path) -> set[str]:
    """Top-level names imported by ``path``'s module-level statements (lazy imports inside
    functions are a choice: they only need their extra)."""
    names = set()
    for statement in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(statement, ast.Import):
            names |= {alias.name.split(".")[0] for alias in statement.names}
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            names.add(statement.module.split(".")[0])
    return names


def test_every_module_level_import_is_a_core_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = _installed_with({_name(r) for r in project["dependencies"]})
    distributions = packages_distributions()
    missing = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            where = str(path.relative_to(ROOT))
            own = set(PACKAGES) | set(sys.stdlib_module_names) | {"__future__"} | EXTRA_ONLY.get(where, set())
            for name in _loaded_imports(path) - own:
                if not {_name(d) for d in distributions.get(name, [name])} & core:
                    missing.add(f"{where}: {name}")
    assert not missing, sorted(missing)
