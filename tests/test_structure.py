"""The engine's imports point one way: `flowhook` imports nothing built on it, and none of its modules cycle."""

from __future__ import annotations

import ast
import graphlib

from tests.conftest import ROOT

# What is built on the engine: the app, the workers, the handlers and the project's own tooling.
ABOVE = {"app", "wsgi", "workers", "handlers", "bench", "deploy", "dev", "tests"}


def engine_imports() -> dict[str, set[str]]:
    """Every module of ``flowhook`` with the modules it imports: anywhere in it, ``TYPE_CHECKING`` included."""
    imports = {}
    for path in (ROOT / "flowhook").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                # `from flowhook import logs` imports the module flowhook.logs.
                found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
                found |= {str(arg.value) for arg in node.args if isinstance(arg, ast.Constant)}
        imports[name] = found
    return imports


def test_the_engine_imports_nothing_built_on_it() -> None:
    upward = {
        (module, name) for module, names in engine_imports().items() for name in names if name.split(".")[0] in ABOVE
    }
    assert upward == set()


def test_the_engines_modules_import_no_cycle() -> None:
    imports = engine_imports()
    # The package itself aside: `from flowhook import x` runs flowhook/__init__.py, which imports Call.
    graph = {
        module: {name for name in names if name in imports and name != "flowhook"} for module, names in imports.items()
    }
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle
