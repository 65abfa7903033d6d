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
# Every reference must resolve (CI builds with -n -W), except the types of other
# libraries: the docs build offline, without intersphinx inventories to link them to.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:(class|data|obj)", r"(numpy|np|keras|os|pathlib|collections|matplotlib|tf|types|argparse|posix)\..*"),
    (r"py:class", r"transferkit\.models\.classifier\._Classifier"),  # a private base class
    (r"py:(class|data|obj)", r"(Path|PathLike|Callable|Sequence|Mapping|Iterable|Any)"),
]
suppress_warnings = ["myst.header"]


def _drop_type_docstring(app, what, name, obj, options, lines):
    """A constant without a docstring of its own shows its value, not ``str``'s docstring."""
    type_doc = getattr(type(obj), "__doc__", None)
    if what in ("data", "attribute") and type_doc and lines:
        if "\n".join(lines).strip() == inspect.cleandoc(type_doc).strip():
            lines.clear()


_ROLE_TYPES = {"class": ("class", "exception"), "exc": ("exception", "class"),
               "func": ("function", "method"), "meth": ("method", "function"),
               "data": ("data", "attribute"), "attr": ("attribute", "data", "property"),
               "obj": ("class", "function", "data", "attribute", "exception", "method")}


def _resolve_short_name(app, env, node, contnode):
    """``DataSplits`` in a docstring means ``transferkit.data.splits.DataSplits``.

    Annotations and Napoleon's fields name our own objects unqualified; where
    exactly one documented object of the right kind ends with the name, link it.
    """
    if node.get("refdomain") != "py":
        return None
    target, types = node["reftarget"], _ROLE_TYPES.get(node["reftype"], ())
    domain = env.get_domain("py")
    found = [name for name, obj in domain.objects.items()
             if obj.objtype in types and name.endswith("." + target.split(".")[-1])
             and ("." + name).endswith("." + target)]
    if len(found) != 1:
        return None
    from sphinx.util.nodes import make_refnode

    obj = domain.objects[found[0]]
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, found[0])


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstring)
    app.connect("missing-reference", _resolve_short_name)
