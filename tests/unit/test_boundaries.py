"""Each service imports only itself and `shared/`: what services share lives in `shared/`, so a
service can be deployed, scaled and changed on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    assert len(SERVICES) == 4
    foreign = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "services" / service).rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("services.") and not name.startswith(f"services.{service}")
    }
    assert foreign == set()


def test_the_command_line_tools_import_no_service() -> None:
    # cli/ runs on an operator's or seller's machine: it may use shared/ contracts, HTTP and the
    # broker, never a service's own code.
    foreign = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "cli").rglob("*.py")
        for name in imported_modules(path)
        if name.startswith("services")
    }
    assert (ROOT / "cli" / "saleswire.py").exists()
    assert foreign == set()
