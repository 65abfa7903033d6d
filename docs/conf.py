"""Sphinx configuration: autodoc + napoleon (Google style) + MyST for the Markdown pages."""

import inspect
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import transferkit  # noqa: E402

project = "transferkit"
author = "transferkit developers"
release = version = transferkit.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# No "members" default: with it, Sphinx ignores every directive's own :members: list
# and documents the whole module (sphinx-doc/sphinx#9709). Each directive names its members.
autodoc_default_options = {"show-inheritance": False}
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"transferkit {release}"
# Keras classes in signatures cannot be cross-referenced: do not warn about them.
nitpicky = False
suppress_warnings = ["myst.header"]


def _drop_type_docstring(app, what, name, obj, options, lines):
    """A constant without a docstring of its own shows its value, not ``str``'s docstring."""
    type_doc = getattr(type(obj), "__doc__", None)
    if what in ("data", "attribute") and type_doc and lines:
        if "\n".join(lines).strip() == inspect.cleandoc(type_doc).strip():
            lines.clear()


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstring)
