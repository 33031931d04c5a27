"""The viewer in headless Chromium on real programs: Model Explorer with our adapter and overlays.

Screenshots go to test-artifacts/viz/.
"""

import os
import re

import pytest

from rustyasg.viz.profiler import Profile
from rustyasg.viz.viewer import resolve_target, serve, view_data

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gpt_viewer(gpt):
    t = resolve_target(gpt["trainer"], gpt["batch"], name="gpt")
    prof = Profile()
    with prof:
        t.function(*t.args)
    data = view_data(t, prof, highlight=gpt["model"].lm_head.weight)
    viewer = serve([data], open_browser=False, block=False, port=8311)
    return viewer, data


@pytest.fixture(scope="module")
def page(browser, gpt_viewer):
    viewer, _ = gpt_viewer
    p = browser.new_page(viewport={"width": 1500, "height": 950})
    p.set_default_timeout(90_000)  # CI machines are shared: allow slow rendering
    p.goto(viewer.url)
    p.wait_for_selector("text=op node count", timeout=90_000)
    yield p
    p.close()


def _open_graph_list(page):
    """Open the graph selector's list, closing first any menu still open (on a slow machine the
    previous list can still be closing: its transparent backdrop then takes the clicks)."""
    for _ in range(10):
        if page.locator(".cdk-overlay-backdrop").count() == 0:
            break
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)
    page.get_by_text(re.compile(r"^\s*\d+ nodes\s*$")).first.click()
    page.locator(".cdk-overlay-pane").first.wait_for()


def _select_graph(page, graph_id, data):
    """Open ``graph_id`` and wait until the info panel shows it (a large graph renders slowly)."""
    _open_graph_list(page)
    page.locator(".cdk-overlay-pane").get_by_text(graph_id, exact=True).last.click()
    expected = len(data.graphs[graph_id].nodes)
    for _ in range(120):
        page.wait_for_timeout(500)
        if _graph_info_count(page) == expected:
            break
    assert _graph_info_count(page) == expected, f"{graph_id} was not shown"
    page.wait_for_timeout(500)


def _graph_info_count(page) -> int:
    """The info panel's op node count (-1 while the panel is being redrawn)."""
    found = re.search(r"op node count\s+(\d+)", page.locator("body").inner_text())
    return int(found.group(1)) if found else -1


def _stats(page) -> dict:
    """The 'Aggregated stats' table: {row name: [cells]} (columns in node-data order)."""
    rows = {}
    for line in page.locator("body").inner_text().splitlines():
        cells = [c.strip() for c in line.split("\t") if c.strip()]
        if cells and cells[0] in ("Min", "Max", "Sum", "Avg") and cells[0] not in rows:
            rows[cells[0]] = cells[1:]
    return rows


def test_graphs_are_listed_with_the_programs_node_counts(page, gpt_viewer, artifacts):
    _, data = gpt_viewer
    _open_graph_list(page)
    listing = page.locator("body").inner_text()
    for gid, graph in data.graphs.items():
        assert re.search(rf"{gid}\s+{len(graph.nodes)} nodes", listing), gid
    page.locator(".cdk-overlay-pane").get_by_text("forward", exact=True).last.click()  # closes the list
    page.wait_for_timeout(1000)
    for gid in ("forward", "gradient"):
        _select_graph(page, gid, data)
        page.screenshot(path=os.path.join(artifacts, f"viewer-gpt-{gid}.png"))


def test_search_by_module_path_and_node_details(page, gpt_viewer, artifacts):
    _, data = gpt_viewer
    _select_graph(page, "forward", data)
    path = "transformer.h.0/attn/c_attn"
    page.locator("input[placeholder*='Search']").fill(path)
    page.wait_for_selector("text=results", timeout=20_000)
    expected = [n for n in data.graphs["forward"].nodes if n.namespace == path]
    results = page.locator("text=/\\d+ results?/").first.inner_text()
    assert int(re.search(r"\d+", results).group()) == len(expected)
    assert "transformer.h.0 / attn / c_attn" in page.locator("body").inner_text()
    results = page.locator(".search-results-container")
    results.get_by_text("matmul", exact=True).first.click(modifiers=["Alt"])  # locate and select the node
    page.wait_for_timeout(1500)
    page.screenshot(path=os.path.join(artifacts, "viewer-gpt-search.png"))
    panel = page.locator("body").inner_text()
    assert "NODE INFO" in panel and path in panel and "float32(256, 192)" in panel
    assert re.search(r"source\s+/\S+\.py:\d+", panel)  # the user's file:line that built it
    page.screenshot(path=os.path.join(artifacts, "viewer-gpt-search.png"))


def test_time_overlay_and_path_highlight(browser, gpt_viewer, artifacts):
    viewer, data = gpt_viewer
    page = browser.new_page(viewport={"width": 1500, "height": 950})  # clean: no state from the other tests
    page.set_default_timeout(90_000)
    page.goto(viewer.url)
    page.wait_for_selector("text=op node count", timeout=90_000)
    names = list(data.overlays)
    assert "time (us)" in names and "path" in names
    for gid in ("forward", "gradient"):
        _select_graph(page, gid, data)
        stats = _stats(page)
        time_overlay = data.overlays["time (us)"][0][gid]
        col = names.index("time (us)")
        assert float(stats["Max"][col]) == pytest.approx(max(time_overlay.values()), rel=1e-9)
        marked = data.overlays["path"][0][gid]
        col = names.index("path")
        assert float(stats["Sum"][col]) == pytest.approx(sum(marked.values()))
        assert "path" in page.locator("body").inner_text()
        page.screenshot(path=os.path.join(artifacts, f"viewer-gpt-{gid}-overlays.png"))


def _graph_area(page):
    """The rendered graph (between the search results and the node panel) as grey levels."""
    import io

    import numpy as np
    from PIL import Image

    page.mouse.move(5, 940)  # no tooltip over the graph
    page.wait_for_timeout(800)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot())).convert("L"), dtype=float)
    return shot[110:940, 400:1120]


def test_clicking_trace_highlights_the_selected_nodes_paths(browser, mnist, artifacts):
    """A node chosen in the browser, then the trace button: its ancestors and descendants stay, the rest dims."""
    data = view_data(resolve_target(mnist["trainer"], mnist["batch"], name="mnist"))
    viewer = serve([data], open_browser=False, block=False, port=8312)
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    page.set_default_timeout(90_000)
    page.goto(viewer.url)
    page.wait_for_selector("text=op node count", timeout=90_000)
    page.locator("input[placeholder*='Search']").fill("matmul")
    page.wait_for_selector("text=results", timeout=20_000)
    page.locator(".search-results-container").get_by_text("matmul", exact=True).first.click(modifiers=["Alt"])
    page.wait_for_timeout(1500)
    assert re.search(r"op name\s+matmul", page.locator("body").inner_text())  # the node panel shows it
    before = _graph_area(page)
    page.locator("mat-icon", has_text="multiple_stop").first.click()
    page.wait_for_timeout(1500)
    assert "Disable inputs/outputs tracing" in page.locator("body").inner_text()
    after = _graph_area(page)
    page.screenshot(path=os.path.join(artifacts, "viewer-mnist-trace.png"))
    changed = (abs(after - before) > 8).mean()
    assert changed > 0.005, changed  # nodes off the path were redrawn dimmed...
    assert after.mean() > before.mean()  # ...which lightens the picture
    page.close()
