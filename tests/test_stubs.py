"""The type stubs of the compiled core (python/byzcore/_core_*.pyi) match the compiled modules.

Every name the bindings define must be in ``_core_generic.pyi`` with the same number of
parameters as its pybind11 signature (read from ``__doc__``), and the stub must not name
anything the module lacks, so the stubs cannot drift from ``csrc/bindings``. The AVX builds'
stubs re-export the generic one; each compiled build present is checked against it.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest

import byzcore

# The stubs next to the imported package: python/byzcore in a source tree, the installed
# package when the suite runs against a wheel (.ci/wheel); the wheel ships them.
STUB_DIR = pathlib.Path(byzcore.__file__).resolve().parent
GENERIC_STUB = STUB_DIR / "_core_generic.pyi"
ISAS = ("generic", "avx2", "avx512")


def _arity(args: ast.arguments) -> tuple[int, int]:
    """(required, total) parameters of a stub function, ``self`` excluded."""
    params = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if params and params[0].arg == "self":
        params = params[1:]
    defaults = len(args.defaults) + sum(d is not None for d in args.kw_defaults)
    return len(params) - defaults, len(params)


def stub_interface(path: pathlib.Path) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """Functions (name -> arity; ``Messages.__init__`` as ``Messages``) and other names of a stub."""
    tree = ast.parse(path.read_text())
    functions: dict[str, tuple[int, int]] = {}
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _arity(node.args)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    functions[node.name] = _arity(item.args)
                elif isinstance(item, ast.FunctionDef):
                    names.add(f"{node.name}.{item.name}")
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return functions, names


def _split_params(text: str) -> list[str]:
    """Top-level comma-separated parameters of a signature's parameter list."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def pybind_arities(name: str, doc: str) -> set[tuple[int, int]]:
    """(required, total) of every overload in a pybind11 docstring (``self`` excluded)."""
    found = set()
    for m in re.finditer(rf"^(?:\d+\. )?{re.escape(name)}\((.*)\) -> ", doc, flags=re.M):
        params = [p for p in _split_params(m.group(1)) if not p.startswith("self")]
        if params in (["*args", "**kwargs"],):
            continue
        required = sum("=" not in p for p in params)
        found.add((required, len(params)))
    return found


def module_interface(mod) -> tuple[dict[str, set[tuple[int, int]]], set[str]]:
    functions: dict[str, set[tuple[int, int]]] = {}
    names: set[str] = set()
    for key in dir(mod):
        if key.startswith("_") and key != "__version__":
            continue
        value = getattr(mod, key)
        if isinstance(value, type):
            functions[key] = pybind_arities("__init__", value.__init__.__doc__ or "")
            names.update(f"{key}.{k}" for k in vars(value) if not k.startswith("_"))
        elif callable(value):
            functions[key] = pybind_arities(key, value.__doc__ or "")
        else:
            names.add(key)
    return functions, names


def compiled(isa: str):
    """The compiled module of ``isa``, or None where it is not built or this CPU cannot run it.

    Importing a module built for an instruction set the CPU lacks dies with SIGILL (its
    initialisers are compiled for that ISA too), so the CPU is asked first, as _native does.
    """
    if not byzcore._native.core.cpu_supports(isa):
        return None
    try:
        return importlib.import_module(f"byzcore._core_{isa}")
    except ImportError:
        return None


@pytest.mark.parametrize("isa", ISAS)
def test_stub_matches_compiled_module(isa):
    mod = compiled(isa)
    if mod is None:
        pytest.skip(f"byzcore._core_{isa} is not built here, or this CPU cannot run it")
    stub_funcs, stub_names = stub_interface(GENERIC_STUB)
    mod_funcs, mod_names = module_interface(mod)

    missing = sorted(set(mod_funcs) - set(stub_funcs))
    assert not missing, (f"byzcore._core_{isa} defines {', '.join(missing)}, missing from "
                         f"{GENERIC_STUB.name}; add their signatures there")
    extra = sorted(set(stub_funcs) - set(mod_funcs))
    assert not extra, f"{GENERIC_STUB.name} declares {', '.join(extra)}, which byzcore._core_{isa} lacks"
    wrong = {k: (stub_funcs[k], sorted(mod_funcs[k])) for k in stub_funcs
             if mod_funcs[k] and stub_funcs[k] not in mod_funcs[k]}
    assert not wrong, f"(required, total) parameters differ, stub vs byzcore._core_{isa}: {wrong}"
    unreadable = sorted(k for k, v in mod_funcs.items() if not v)
    assert not unreadable, f"no pybind11 signature readable in the __doc__ of {unreadable}"

    assert stub_names - mod_names == set(), f"stub names absent from the module: {sorted(stub_names - mod_names)}"
    assert mod_names - stub_names == set(), (f"byzcore._core_{isa} attributes missing from {GENERIC_STUB.name}: "
                                             f"{sorted(mod_names - stub_names)}")


@pytest.mark.parametrize("isa", ISAS[1:])
def test_isa_stubs_reexport_the_generic_interface(isa):
    tree = ast.parse((STUB_DIR / f"_core_{isa}.pyi").read_text())
    star = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "_core_generic"
            and n.level == 1 and any(a.name == "*" for a in n.names)]
    assert star, f"_core_{isa}.pyi must re-export the shared interface: from ._core_generic import *"


def test_py_typed_ships_with_the_package():
    assert (STUB_DIR / "py.typed").is_file()


def test_arity_reader_on_known_signatures():
    # The parser the drift check relies on, on the shapes pybind11 writes.
    assert pybind_arities("f", "f(arg0: int, arg1: collections.abc.Sequence[typing.SupportsInt | x]) -> None") \
        == {(2, 2)}
    assert pybind_arities("__init__", "__init__(self: M, rows: list[int], d: int, device: str = 'cpu') -> None") \
        == {(2, 3)}
    doc = "g(*args, **kwargs)\nOverloaded function.\n\n1. g(arg0: int) -> None\n\n2. g(arg0: int, arg1: str) -> None\n"
    assert pybind_arities("g", doc) == {(1, 1), (2, 2)}
    assert pybind_arities("h", "h() -> int") == {(0, 0)}
