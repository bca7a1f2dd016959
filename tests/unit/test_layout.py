"""Guards on the package's shape: what is installed, what protocol/ may import, what is public."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import zmqswarm
import zmqswarm.protocol

ROOT = Path(__file__).parents[2]
IO_MODULES = {"zmq", "asyncio", "threading", "socket", "subprocess", "time", "rich", "select"}


def test_setuptools_packages_match_the_tree() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in ROOT.glob("zmqswarm/**/__init__.py")
    } | {"zmqswarm.cli"}
    assert set(config["packages"]) == on_disk
    assert config["package-dir"] == {"zmqswarm.cli": "cli"}


def test_protocol_is_sans_io() -> None:
    for path in (ROOT / "zmqswarm" / "protocol").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in IO_MODULES, f"{path.name} imports {name}"


def test_public_names_resolve_and_match_all() -> None:
    for module in (zmqswarm, zmqswarm.protocol):
        assert sorted(module.__all__) == sorted(set(module.__all__))
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_cli_is_only_installed_as_zmqswarm_cli(tmp_path: Path) -> None:
    probe = "import importlib.util as u; print(u.find_spec('cli') is None)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "True"
    zs = subprocess.run(
        [sys.executable, "-m", "zmqswarm.cli", "--help"], cwd=tmp_path, capture_output=True
    )
    assert zs.returncode == 0


def test_py_typed_ships() -> None:
    assert (ROOT / "zmqswarm" / "py.typed").exists()
