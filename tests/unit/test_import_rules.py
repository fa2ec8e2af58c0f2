"""The architecture, enforced: a pure core, no import cycles, randomness handed in.

Every import in ``lab/`` is read with ``ast``, including the ones inside functions (a lazy
import still ties two modules together). Imports under ``if TYPE_CHECKING:`` are left out:
they never run. The rules:

* a module of ``lab.core`` imports only the standard library and other ``lab.core``
  modules, and none of the modules that do I/O or read time (``FORBIDDEN_IN_CORE``);
* no module of ``lab`` takes part in an import cycle;
* the core draws no randomness of its own: no ``uuid``, no ``os.urandom``, no module-level
  ``random.random()``; a seeded ``random.Random`` or an id is handed in.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

import lab

LAB = Path(lab.__file__).resolve().parent
FORBIDDEN_IN_CORE = {
    "zmq",
    "socket",
    "time",
    "threading",
    "rich",
    "typer",
    "psutil",
    "matplotlib",
    "asyncio",
    "subprocess",
    "multiprocessing",
    "uuid",
}
RANDOM_MODULE_FUNCTIONS = {"random", "randint", "choice", "choices", "shuffle", "uniform"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(LAB.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, Path] = {module_name(path): path for path in LAB.rglob("*.py")}
CORE = sorted(name for name in MODULES if name == "lab.core" or name.startswith("lab.core."))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_runtime(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` except what sits in an ``if TYPE_CHECKING:`` block."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _walk_runtime(other)
            continue
        yield child
        yield from _walk_runtime(child)


def imported_names(name: str) -> List[str]:
    """Dotted names a module imports: ``from a import b`` gives ``a.b`` when that is a
    module (the package ``a`` is imported as its parent anyway), else ``a``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: List[str] = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(full if full in MODULES else base)
    return found


def lab_dependencies(name: str) -> Set[str]:
    """The ``lab`` modules a module imports, each resolved to a real module file."""
    deps = set()
    for target in imported_names(name):
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name and target != "lab":
            deps.add(target)
    return deps


def test_the_layout_has_a_core_and_its_shells():
    for package in ("lab.core", "lab.processes", "lab.ui", "lab.tools"):
        assert package in MODULES, f"{package} is missing"
        assert ast.get_docstring(ast.parse(MODULES[package].read_text())), package
    assert "lab.core.consumer_core" in MODULES or "lab.core.consumer" in MODULES


@pytest.mark.parametrize("name", CORE)
def test_core_module_does_no_io_and_imports_only_the_core(name):
    stdlib = getattr(sys, "stdlib_module_names", None)
    for target in imported_names(name):
        root = target.split(".")[0]
        assert root not in FORBIDDEN_IN_CORE, f"{name} imports {target}"
        if root == "lab":
            assert target == "lab.core" or target.startswith("lab.core"), (
                f"{name} imports {target}, outside the core"
            )
        elif stdlib is not None:
            assert root in stdlib or root == "__future__", f"{name} imports {target}"


@pytest.mark.parametrize("name", CORE)
def test_core_module_draws_no_randomness_of_its_own(name):
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "random":
                assert node.func.attr not in RANDOM_MODULE_FUNCTIONS, (
                    f"{name}:{node.lineno} calls random.{node.func.attr}(): hand a Random in"
                )
                if node.func.attr == "Random":
                    assert node.args, f"{name}:{node.lineno} makes an unseeded random.Random()"
            if isinstance(owner, ast.Name) and owner.id == "os":
                assert node.func.attr != "urandom", f"{name}:{node.lineno} calls os.urandom"


def find_cycle() -> List[str]:
    graph = {name: lab_dependencies(name) for name in MODULES}
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return []


def test_no_import_cycles_in_lab():
    cycle = find_cycle()
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    """The rule can fail: two modules importing each other are reported."""
    fake = {"lab.a": {"lab.b"}, "lab.b": {"lab.a"}}
    monkeypatch.setattr(sys.modules[__name__], "MODULES", dict.fromkeys(fake, Path(".")))
    monkeypatch.setattr(sys.modules[__name__], "lab_dependencies", lambda name: fake[name])
    assert find_cycle() == ["lab.a", "lab.b", "lab.a"]
