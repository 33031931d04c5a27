"""Sphinx configuration of the RustyASG documentation (built by ``bash scripts/docs.sh``).

The API pages are written from the installed parts before Sphinx looks for sources
(``_ext/api_pages.py``); the tutorials are executed on every build.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))
import api_pages  # noqa: E402

api_pages.write_pages(Path(__file__).parent)

project = "RustyASG"
author = "RustyASG contributors"
copyright = "2026, RustyASG contributors"
try:
    from importlib.metadata import version as _version

    release = _version("rustyasg-core")
except Exception:  # building from a tree where the core is not installed
    release = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_copybutton",
]

# Tutorials are executed on every build: a page whose code no longer runs fails the build.
nb_execution_mode = os.environ.get("RUSTYASG_DOCS_EXECUTE", "force")
nb_execution_raise_on_error = True
nb_execution_timeout = 900
nb_merge_streams = True
# Progress bars and backend notices (a software GPU adapter) go to stderr; a failing cell still fails the build.
nb_output_stderr = "remove"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The summary tables link to the per-module pages written by api_pages; no per-name stubs.
autosummary_generate = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute", "_ext"]
html_theme = "furo"
html_title = f"RustyASG {release}"
# No network at build time: no intersphinx inventories are fetched.
intersphinx_mapping: dict = {}
