"""Sphinx configuration of bprop's documentation site.

Build it with ``python -m sphinx -W -b html docs/site docs/site/_build/html`` from the
repository root. The API reference is read from the installed package (``pip install -e .``),
so the pages show the code that the tests run.
"""

import importlib.util
import os
import sys

# The installed package is preferred; from a bare checkout, src/ stands in for it.
if importlib.util.find_spec("bprop") is None:
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src")))

import bprop  # noqa: E402

project = "bprop"
author = "bprop's authors"
copyright = "bprop's authors, MIT licence"
release = bprop.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx.ext.autosummary",
    "myst_nb",  # (Markdown pages through MyST, and the tutorials' notebooks with their outputs)
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
# The notebooks are shown with the outputs they are stored with: the test suite runs them.
nb_execution_mode = "off"
exclude_patterns = ["_build"]
root_doc = "index"

# numpydoc-style sections (Parameters, Returns, Examples, ...) through napoleon.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
# Types become links; "Loss or name" means a loss's name, not an attribute called ``name``.
napoleon_preprocess_types = True
napoleon_type_aliases = {"name": "``name``"}

autodoc_member_order = "bysource"
# A module's __all__ may list names it imports (bprop.nn.layers lists Layer): each object is
# documented once, in the module that defines it.
autodoc_default_options = {"ignore-module-all": True}
# Type hints go into the description, where they read as the docstring's "Parameters".
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autoclass_content = "both"
# The summary tables of api/bprop.rst only link; no stub pages are generated.
autosummary_generate = False

# The README's [Speed](#speed) links become links to the heading on whichever page holds it.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# MathJax is loaded from its CDN by the browser (Sphinx's default); the pages' formulas need
# a network connection to render, the rest of the site does not.
html_theme = "alabaster"
html_title = f"bprop {release}"
html_theme_options = {
    "description": "Backpropagation written by hand, layer by layer, in NumPy",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "230px",
}
html_static_path = []


def _resolve_public_name(app, env, node, contnode):
    """Resolve ``bprop.Dense`` (how users and docstrings name it) to where it is documented.

    Each object is documented once, in the module that defines it (``bprop.nn.dense.Dense``);
    a reference through a re-export is followed to that module.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("bprop."):
        return None
    obj = bprop
    for part in target.split(".")[1:]:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    if isinstance(obj, type(bprop)):
        canonical = obj.__name__
    elif hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
        canonical = f"{obj.__module__}.{obj.__qualname__}"
    else:
        return None
    if canonical == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
    )


def setup(app):
    app.connect("missing-reference", _resolve_public_name)
