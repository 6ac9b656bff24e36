"""The public API's docstrings are NumPy-style and point at the contract (issue 13).

Read from the source with :mod:`ast`, so the check needs neither the compiled core nor the
optional extras. Public means: the names ``byzcore`` exports, and every top-level function
and class without a leading underscore in a module whose dotted path has none either.
NumPy-style means: a one-line summary, then a ``Parameters`` section naming every argument
(for a class, those of ``__init__``, or the fields of a dataclass) and a ``Returns`` (or
``Yields``) section for a function that returns something. The rules, pre-aggregators,
algorithms and attacks (the names the spec defines) also cite ``docs/spec.md#<anchor>``.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "byzcore"
pytestmark = pytest.mark.skipif(not PACKAGE.is_dir(), reason="python/ not next to the tests")

# Modules whose public definitions are the spec's subjects: each must cite docs/spec.md#...
CITES_SPEC = ("byzcore._ops", "byzcore.aggregators", "byzcore.attacks.classic",
              "byzcore.attacks.search", "byzcore.algorithms.byz_vr_marina_pp",
              "byzcore.algorithms.resam", "byzcore.algorithms.sgd", "byzcore.algorithms.zeno",
              "byzcore.algorithms.zeno_pp", "byzcore.problems.logistic",
              "byzcore.problems.torch_problem", "byzcore.problems.data")
SECTION = re.compile(r"^\s*(Parameters|Returns|Yields|Raises|Attributes|See Also|Notes|"
                     r"References|Examples|Other Parameters|Warns)\n\s*-{3,}\s*$", re.M)


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def _exported_from_init(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """module -> names that ``byzcore/__init__.py`` imports from it (the top-level API)."""
    out: dict[str, set[str]] = {}
    for node in trees["byzcore"].body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.setdefault(f"byzcore.{node.module}", set()).update(a.name for a in node.names)
    return out


def _is_public_module(name: str) -> bool:
    # The CLI's interface is the command line (documented by --help and docs/), not its functions.
    return not any(part.startswith("_") for part in name.split(".")) and not name.startswith("byzcore.cli")


def _public_definitions():
    trees = _sources()
    exported = _exported_from_init(trees)
    for module, tree in trees.items():
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                continue
            if node.name in exported.get(module, set()) or (
                    _is_public_module(module) and not node.name.startswith("_")):
                yield module, node


# Empty where the tests run without the source tree (.ci/wheel): the module is skipped there.
DEFINITIONS = sorted(_public_definitions(), key=lambda mn: (mn[0], mn[1].name)) if PACKAGE.is_dir() else []


def _arguments(fn: ast.FunctionDef) -> list[str]:
    a = fn.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    names += [f"*{a.vararg.arg}"] if a.vararg else []
    names += [f"**{a.kwarg.arg}"] if a.kwarg else []
    return [n for n in names if n not in ("self", "cls")]


def _returns_something(fn: ast.FunctionDef) -> bool:
    if isinstance(fn.returns, ast.Constant) and fn.returns.value is None:
        return False
    if fn.returns is not None:
        return True
    return any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(fn))


def _is_dataclass(cls: ast.ClassDef) -> bool:
    return any("dataclass" in ast.unparse(d) for d in cls.decorator_list)


def _documented_arguments(cls_or_fn) -> list[str]:
    if isinstance(cls_or_fn, ast.FunctionDef):
        return _arguments(cls_or_fn)
    if _is_dataclass(cls_or_fn):
        return [n.target.id for n in cls_or_fn.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                and "ClassVar" not in ast.unparse(n.annotation) and not n.target.id.startswith("_")]
    init = next((n for n in cls_or_fn.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    return _arguments(init) if init is not None else []


def problems_of(module: str, node) -> list[str]:
    doc = ast.get_docstring(node)
    if not doc:
        return ["no docstring"]
    found = []
    if not doc.splitlines()[0].strip():
        found.append("the first line is not a summary")
    sections = set(SECTION.findall(doc))
    arguments = _documented_arguments(node)
    if arguments:
        # A dataclass may list its fields under Attributes (NumPy's convention for them).
        heading = "Parameters" if "Parameters" in sections or not _is_dataclass(node) else "Attributes"
        if heading not in sections:
            found.append(f"no {heading} section (arguments: {', '.join(arguments)})")
        else:
            block = doc.split(heading, 1)[1]
            named = {name.strip().lstrip("*") for line in re.findall(r"^\s*([\w*][\w*, ]*?)\s*(?::.*)?$", block, re.M)
                     for name in line.split(",")}
            missing = [a for a in arguments if a.lstrip("*") not in named]
            if missing:
                found.append(f"{heading} does not name: {', '.join(missing)}")
    if isinstance(node, ast.FunctionDef) and _returns_something(node) and not sections & {"Returns", "Yields"}:
        found.append("no Returns section")
    if module in CITES_SPEC and "spec.md#" not in doc:
        found.append("cites no docs/spec.md anchor")
    return found


@pytest.mark.parametrize(("module", "node"), DEFINITIONS, ids=[f"{m}.{n.name}" for m, n in DEFINITIONS])
def test_public_docstring_is_numpy_style(module, node):
    found = problems_of(module, node)
    assert not found, f"{module}.{node.name}: " + "; ".join(found)


def test_the_checker_finds_what_it_should():
    """The check can fail: a missing section, an unnamed argument, a missing citation."""
    good = ast.parse('def f(x, *, k=1):\n    """Sum.\n\n    Parameters\n    ----------\n'
                     '    x : array\n        In.\n    k : int\n        Count.\n\n    Returns\n'
                     '    -------\n    array\n        Out (docs/spec.md#rule-mean).\n    """\n'
                     '    return x\n').body[0]
    assert problems_of("byzcore._ops", good) == []
    bare = ast.parse('def f(x, k):\n    """Sum."""\n    return x\n').body[0]
    assert problems_of("byzcore.experiments.run", bare) == [
        "no Parameters section (arguments: x, k)", "no Returns section"]
    partial = ast.parse('def f(x, k):\n    """Sum.\n\n    Parameters\n    ----------\n'
                        '    x : array\n        In.\n    """\n').body[0]
    pair = ast.parse('def f(x, k):\n    """Sum.\n\n    Parameters\n    ----------\n'
                     '    x, k : array\n        In.\n    """\n').body[0]
    assert problems_of("byzcore.experiments.run", pair) == []
    assert problems_of("byzcore._ops", partial) == ["Parameters does not name: k",
                                                    "cites no docs/spec.md anchor"]
    assert len(DEFINITIONS) > 100  # the collector sees the package
