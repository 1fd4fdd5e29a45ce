"""The package boundaries docs/development.md describes: the server never imports the load
generator, and dev.py's package runs on the bare standard library (before .venv exists)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_PACKAGES = ("polls", "config", "benchmarks")
# The one place the server's code reaches the load generator: the command that runs it, and
# only once it runs (never when Django loads the commands or the app).
LOADTEST_COMMAND = Path("polls/management/commands/loadtest.py")


def loadgen_imports(tree: ast.AST) -> list[ast.stmt]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(name == "loadgen" or name.startswith("loadgen.") for name in names):
            found.append(node)
    return found


def inside_functions(tree: ast.AST) -> set[int]:
    return {
        id(child)
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.walk(function)
    }


def test_the_server_never_imports_the_load_generator():
    wrong = []
    for package in SERVER_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            tree = ast.parse(path.read_text(), filename=str(relative))
            imports = loadgen_imports(tree)
            if relative == LOADTEST_COMMAND:
                lazy = inside_functions(tree)
                imports = [node for node in imports if id(node) not in lazy]
            wrong += [f"{relative}:{node.lineno}" for node in imports]
    assert wrong == [], f"the server imports loadgen at {wrong}"


def test_the_loadtest_command_still_reaches_the_load_generator():
    tree = ast.parse((ROOT / LOADTEST_COMMAND).read_text())
    assert loadgen_imports(tree), "the lazy-import exception above would guard nothing"


def test_dev_py_and_its_package_need_only_the_standard_library():
    modules = sorted(path.stem for path in (ROOT / "devenv").glob("*.py"))
    imports = "; ".join(["import dev", *(f"import devenv.{name}" for name in modules)])
    # -S: no site-packages (the virtualenv's or the system's), -I: nor the environment's paths.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, '.'); {imports}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_the_load_generators_processes_and_scripts_start_without_django_set_up():
    """A worker process of ``manage.py loadtest`` (spawned: a fresh interpreter) and the abuse
    scripts import the kinds without Django's settings or app registry."""
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    result = subprocess.run(
        [sys.executable, "-c", "import loadgen.phones, loadgen.stuffing, loadgen.wordflood"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
