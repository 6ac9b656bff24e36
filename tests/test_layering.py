"""The package's layering (LAYOUT of python/byzcore): every module imports, and no module
imports a layer above its own, so the rule cannot silently break.

Layers, lowest first (a module may import its own layer and those below):

0. kernel API and shared helpers: ``_native``, ``_arrays``, ``_ops``, ``_spec``, ``_streams``,
   ``_progress``, ``_environ``
1. rules and the attack set: ``aggregators``, ``attacks``, and the top package ``byzcore``
   (which re-exports the kernel functions and rule objects)
2. ``problems``
3. ``algorithms``
4. integrations and engines: ``torch``, ``distributed``, ``flower``
5. work on top of the library: ``experiments``, ``bench``
6. the command line: ``cli``, ``__main__`` (only these parse arguments; nothing imports them)

Imports inside an ``if __name__ == "__main__":`` block are not checked: they run only when
that file is the program (``torchrun -m byzcore.distributed.launch`` hands over to
``byzcore.cli.launch`` there), which then is the top of the stack; importing the module never
runs them.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import byzcore

PACKAGE = pathlib.Path(byzcore.__file__).resolve().parent

LAYERS = {
    "_native": 0, "_arrays": 0, "_ops": 0, "_spec": 0, "_streams": 0, "_progress": 0, "_environ": 0,
    "_core_generic": 0, "_core_avx2": 0, "_core_avx512": 0,  # the compiled modules (and their stubs)
    "_build_config": 0,  # written by CMake into installed builds only
    "aggregators": 1, "attacks": 1, "": 1,
    "problems": 2,
    "algorithms": 3,
    "torch": 4, "distributed": 4, "flower": 4,
    "experiments": 5, "bench": 5,
    "cli": 6, "__main__": 6,
}


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(["byzcore", *parts]))
    return names


def _path(module: str) -> pathlib.Path:
    rel = pathlib.Path(*module.split(".")[1:])
    return PACKAGE / rel / "__init__.py" if (PACKAGE / rel).is_dir() else (PACKAGE / rel).with_suffix(".py")


def _component(module: str) -> str:
    """The top-level part of ``byzcore.<part>...`` ('' for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _is_main_guard(node: ast.AST) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators))


def _imports(module: str, source: str | None = None) -> list[tuple[int, str]]:
    """``(line, imported byzcore module)`` for every import of ``module`` (module level or in
    a function), relative imports resolved, ``__main__`` blocks left out."""
    path = _path(module)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source, str(path))
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_main_guard(child):
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name) for a in child.names if a.name.split(".")[0] == "byzcore")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target == "byzcore":  # `from .. import _streams`: a module, or a name of the package
                    found.extend((child.lineno, f"byzcore.{a.name}" if a.name in LAYERS else "byzcore")
                                 for a in child.names)
                elif target.split(".")[0] == "byzcore":
                    found.append((child.lineno, target))
            visit(child)

    visit(tree)
    return found


MODULES = _modules()


def test_every_module_has_a_layer():
    unknown = sorted({_component(m) for m in MODULES} - set(LAYERS))
    assert not unknown, f"add these to LAYERS (and LAYOUT.md): {unknown}"


# Modules that import an optional extra at import time, by design (the package itself and
# everything else must import without it: the wheel's tests run in a venv with no extras).
NEEDS_EXTRA = {"byzcore.flower._compat": "flwr", "byzcore.flower.client": "flwr",
               "byzcore.flower.strategy": "flwr"}


@pytest.mark.parametrize("module", [m for m in MODULES if m != "byzcore.__main__"])
def test_every_module_imports(module):
    if module in NEEDS_EXTRA:
        pytest.importorskip(NEEDS_EXTRA[module])
    importlib.import_module(module)  # also catches import cycles that fail at import time


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_a_higher_layer(module):
    own = LAYERS[_component(module)]
    bad = [f"line {line}: {target} (layer {LAYERS[_component(target)]})"
           for line, target in _imports(module) if LAYERS[_component(target)] > own]
    assert not bad, f"{module} (layer {own}) imports a higher layer: {bad}"


def test_the_checker_sees_upward_imports():
    """The check itself can fail: imports of the CLI and of algorithms from problems/ are
    found (relative or absolute, in a function too); a __main__ block is not checked."""
    source = ("from ..cli import main\n"
              "from .. import _streams, make_aggregator\n"
              "def f():\n    import byzcore.algorithms.loop\n"
              "if __name__ == '__main__':\n    from byzcore.cli import launch\n")
    targets = [t for _, t in _imports("byzcore.problems.base", source)]
    assert targets == ["byzcore.cli", "byzcore._streams", "byzcore", "byzcore.algorithms.loop"]
    assert [LAYERS[_component(t)] > LAYERS["problems"] for t in targets] == [True, False, False, True]
