"""The documentation site: built with warnings as errors and every tutorial executed, every public name
of every part in the API reference, no broken internal link, and the rendered pages in headless Chromium.

One build serves every test here (about 110 s of CPU time, most of it executing the tutorials).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from site_links import broken_links

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARTIFACTS = ROOT / "test-artifacts" / "docs"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow


def _api_pages():
    spec = importlib.util.spec_from_file_location("api_pages", DOCS / "_ext" / "api_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def api_groups():
    """{part: {group: entries}} as the build is about to see them (taken just before it starts).

    Collected in a fresh interpreter, as the build's: in this process earlier tests have imported
    modules (``rustyasg.core.cli``, ...) that then show up as attributes of their packages.
    """
    script = (f"import importlib.util, json, sys; spec = importlib.util.spec_from_file_location('api_pages', "
              f"{str(DOCS / '_ext' / 'api_pages.py')!r}); api = importlib.util.module_from_spec(spec); "
              "spec.loader.exec_module(api); "
              "json.dump({p: api.collect(p) for p, _, _ in api.PARTS}, sys.stdout)")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-5000:]
    return {part: {group: [tuple(e) for e in entries] for group, entries in groups.items()}
            for part, groups in json.loads(run.stdout).items()}


@pytest.fixture(scope="module")
def site(tmp_path_factory, api_groups):
    """The site built as ``bash scripts/docs.sh`` builds it (same flags), into a temporary folder."""
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "RUSTYASG_DOCS_EXECUTE": "force"}
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-j", "2", "-b", "html",
                          "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-10000:]
    return out / "html"


def test_the_site_has_the_pages_a_newcomer_looks_for(site):
    for page in ["index", "install", "tutorials/index", "tutorials/quickstart", "api/index", "architecture",
                 "examples", "datasets", "torch_mapping", "contributing", "changelog"]:
        assert (site / f"{page}.html").is_file(), page
    index = (site / "index.html").read_text()
    for title in ["Install", "Tutorials", "API reference", "Architecture", "Contributing to RustyASG"]:
        assert title in index, title


def test_every_tutorial_ran_every_cell(site):
    """myst-nb keeps each executed notebook: every code cell ran, in order, without an error output."""
    executed = site.parent / "jupyter_execute"
    sources = [p for p in sorted(DOCS.rglob("*.md")) if "_build" not in p.parts and "```{code-cell}" in p.read_text()]
    assert len(sources) >= 9, sources
    for source in sources:
        cells = source.read_text().count("```{code-cell}")
        notebook = json.loads((executed / source.relative_to(DOCS)).with_suffix(".ipynb").read_text())
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert [c["execution_count"] for c in code] == list(range(1, cells + 1)), source.name
        errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{source.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        page = (site / source.relative_to(DOCS)).with_suffix(".html").read_text()
        assert "cell_output" in page, source.name


def test_tutorials_show_real_results(site):
    """Spot checks that the executed output is the computation's, not an empty run."""
    quick = (site / "tutorials" / "quickstart.html").read_text()
    assert "ShapeError" in quick and "update w &lt;-" in quick  # the build-time error and the dumped program
    kernel = (site / "tutorials" / "backend_kernel.html").read_text()
    assert "cumsum_last conforms on cpu" in kernel and "cumsum_last conforms on wgpu" in kernel
    assert "caught: cumsum_last example 0 on cpu" in kernel  # the broken kernel was detected
    resumed = (site / "tutorials" / "checkpoints.html").read_text()
    assert "resumed run == uninterrupted run" in resumed
    hf = (site / "tutorials" / "onnx_and_huggingface.html").read_text()
    assert "same tokens as transformers: True" in hf


def test_every_public_name_of_every_part_has_its_entry(site, api_groups):
    api = _api_pages()
    missing = []
    for part, groups in api_groups.items():
        slug = part.replace(".", "_")
        for group, entries in groups.items():
            page = (site / "api" / slug / f"{api._slug(group)}.html").read_text()
            missing += [path for path, _ in entries if f'id="{path}"' not in page]
    assert not missing, f"{len(missing)} names without an entry, e.g. {missing[:10]}"


def test_api_grouping_lists_each_object_once_under_its_shortest_path():
    groups = _api_pages().collect("rustyasg.nn")
    paths = [path for entries in groups.values() for path, _ in entries]
    assert len(paths) == len(set(paths))
    assert "rustyasg.nn.Linear" in paths and "rustyasg.nn.linear.Linear" not in paths
    assert ("rustyasg.nn.Linear", "class") in groups["rustyasg.nn.linear"]
    core = _api_pages().collect("rustyasg.core")
    assert ("rustyasg.core.relu", "function") in core["rustyasg.core.ops:elementwise"]


def test_no_internal_link_is_broken(site):
    broken = broken_links(site)
    assert not broken, "\n".join(f"{b.page}: {b.target} ({b.reason})" for b in broken[:30])


def test_the_link_checker_finds_a_broken_anchor_in_the_built_site(site, tmp_path):
    import shutil

    copy = tmp_path / "html"
    shutil.copytree(site, copy, ignore=shutil.ignore_patterns("_images", "_sources", "searchindex.js"))
    page = copy / "tutorials" / "quickstart.html"
    page.write_text(page.read_text().replace('href="../api/index.html"', 'href="../api/index.html#no-such-anchor"', 1)
                    .replace("</body>", '<a href="gone.html">x</a></body>'))
    reasons = {(b.page, b.reason) for b in broken_links(copy)}
    assert ("tutorials/quickstart.html", "no such file") in reasons
    assert ("tutorials/quickstart.html", 'no id="no-such-anchor"') in reasons


@pytest.fixture(scope="module")
def browser(playwright_session):
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.mark.parametrize("page, heading, shot", [
    ("index.html", "RustyASG", "index.png"),
    ("api/rustyasg_nn/rustyasg.nn.linear.html", "rustyasg.nn.linear", "api-nn-linear.png"),
])
def test_screenshot_of_the_rendered_page(site, browser, page, heading, shot):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        tab.goto((site / page).as_uri())
        tab.wait_for_load_state("load")
        assert heading in tab.locator("h1").first.inner_text()
        # The theme's stylesheet applied: the sidebar navigation is laid out and shows the site's sections.
        sidebar = tab.locator(".sidebar-tree").first
        assert sidebar.is_visible() and "Tutorials" in sidebar.inner_text()
        assert sidebar.bounding_box()["width"] > 150
        if page.startswith("api/"):
            entry = tab.locator('dt[id="rustyasg.nn.Linear"]')
            assert entry.is_visible() and "Linear" in entry.inner_text()
        path = ARTIFACTS / shot
        tab.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 20_000  # a rendered page, not a blank one
    finally:
        tab.close()


def test_docstring_examples_of_the_docs_tooling_run():
    import doctest

    import site_links

    for module in (_api_pages(), site_links):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
