"""Sphinx configuration: the API reference from the docstrings, and docs/*.md through MyST.

Build (warnings are errors, as in CI): ``python -m sphinx -W --keep-going -b html docs OUT``
(``.ci/docs``). byzcore is imported as installed, or from this checkout with
``PYTHONPATH=python`` when its compiled core is present in ``python/byzcore``.
"""

from __future__ import annotations

import re

project = "byzcore"
author = "the byzcore authors"
copyright = "the byzcore authors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_templates"]
templates_path = ["_templates"]

# NumPy-style docstrings (Parameters, Returns, Raises, References).
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

autosummary_generate = True
autosummary_imported_members = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}

# Markdown pages: GitHub-style heading anchors so links such as
# benchmarks.md#measured-on-an-nvidia-h200-2026-11-26 resolve in both renderers.
myst_heading_anchors = 4

# The top-level page documents the functions; the classes that ``byzcore`` re-exports are
# documented where they are defined (``byzcore.aggregators``), so each has one target.
import byzcore  # noqa: E402 - needed only here

autosummary_context = {
    "root_classes": ", ".join(sorted(n for n in byzcore.__all__ if isinstance(getattr(byzcore, n), type))),
}

html_theme = "alabaster"
html_static_path: list[str] = []


def _anchors_as_targets(app, docname, source):
    """``<a id="rule-krum"></a>`` (the anchor GitHub renders) becomes the MyST target
    ``(rule-krum)=``, so ``[..](#rule-krum)`` resolves in Sphinx too."""
    source[0] = re.sub(r'^<a id="([\w-]+)"></a>$', r"(\1)=", source[0], flags=re.M)


def setup(app):
    app.connect("source-read", _anchors_as_targets)
