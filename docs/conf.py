"""Sphinx configuration: autodoc + napoleon (Google style) + MyST for the Markdown pages."""

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
autodoc_default_options = {"members": True, "show-inheritance": False}
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = f"transferkit {release}"
# Keras classes in signatures cannot be cross-referenced: do not warn about them.
nitpicky = False
suppress_warnings = ["myst.header"]
