"""The documentation site builds with warnings as errors, and renders the docstrings' maths."""

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="the documentation site needs sphinx (the docs extra)")
pytest.importorskip("myst_parser", reason="the site's guides need myst-parser (the docs extra)")

SITE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "site"


def test_site_builds_without_warnings(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(SITE), str(out)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for page in ("index.html", "api/bprop.html", "api/nn.html", "api/optim.html",
                 "guide/getting-started.html", "tutorials.html", "recipes.html"):
        assert (out / page).is_file(), page
    # Dense's docstring writes its forward pass in a ``.. math::`` block: MathJax's markup.
    nn_page = (out / "api" / "nn.html").read_text(encoding="utf-8")
    assert 'class="math' in nn_page and "\\[" in nn_page
    # The README's sections arrive as pages, not as Markdown source.
    guide = (out / "guide" / "getting-started.html").read_text(encoding="utf-8")
    assert "<h2>" in guide or "<h2 " in guide
    assert "## " not in guide.split("<body", 1)[-1].split("<pre", 1)[0]
