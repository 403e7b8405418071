"""The HTML viewer: what the page carries (Python), and what it does in a real headless Chromium (browser tests)."""

from __future__ import annotations

import base64
import io
import json
import re
import time

import numpy as np
import pytest
import trimesh
from PIL import Image
from selenium.webdriver.common.by import By
from test_outputs import PARTS, cloud_result, mesh_result
from typer.testing import CliRunner

from partdistill_cli.cli import app
from partdistill_cli.export import export_results
from partdistill_cli.io_utils import OutputError
from partdistill_cli.outputs import PALETTE, UNLABELED_COLOR, SegmentResult, read_result, write_segment_outputs
from partdistill_cli.shapes import from_mesh
from partdistill_cli.viewer import _fill, legend_entries, viewer_data, viewer_html

from browser import (
    NO_CHROMIUM,
    canvas_pixels,
    click_mouse,
    console_errors,
    drag_mouse,
    find_chromium,
    frames,
    headless_chromium,
    move_mouse,
    open_viewer,
    scroll_wheel,
)

DTYPES = {"float32": "<f4", "uint32": "<u4", "uint16": "<u2", "uint8": "u1"}


def decode(field: dict) -> np.ndarray:
    """A buffer of the page's data as the page's script reads it."""
    return np.frombuffer(base64.b64decode(field["b64"]), dtype=DTYPES[field["dtype"]])


def page_data(page: str) -> dict:
    """The JSON document embedded in a viewer page."""
    m = re.search(r'<script type="application/json" id="pd-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def png_bytes(color=(10, 200, 30), size=(40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    """The box (body) + cylinder (handle) segment result with its viewer page, confidence 0.8 everywhere."""
    return mesh_result(tmp_path_factory.mktemp("mesh"), html=True)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """A 500-point cloud (body / handle by the sign of x, 5 points unlabeled, confidence 0.7) and its page."""
    r = cloud_result(tmp_path_factory.mktemp("cloud"))
    r["page"] = export_results(r["json"], "html")[0]
    return r


# ---- what the page carries ----------------------------------------------------------------------------------


def test_page_buffers_round_trip_the_result(mesh):
    result = read_result(mesh["json"])
    data = page_data(mesh["written"][-1].read_text())
    assert data["kind"] == "mesh" and data["parts"] == PARTS and data["up"] == "y"
    np.testing.assert_allclose(decode(data["positions"]).reshape(-1, 3), mesh["vertices"], rtol=1e-6, atol=1e-6)
    assert data["indices"]["dtype"] == "uint16"  # 38 vertices: 16-bit indices are enough
    np.testing.assert_array_equal(decode(data["indices"]).reshape(-1, 3), mesh["faces"])
    assert data["labels"]["dtype"] == "uint8"
    np.testing.assert_array_equal(decode(data["labels"]), mesh["face_labels"] + 1)
    np.testing.assert_allclose(decode(data["confidence"]) / 255, result.confidence, atol=0.5 / 255)
    assert data["explain"] is None


def test_legend_shares_are_surface_areas_for_meshes_and_point_counts_for_clouds(mesh, cloud):
    fl = mesh["face_labels"]
    areas = trimesh.Trimesh(mesh["vertices"], mesh["faces"], process=False).area_faces
    entries = legend_entries(read_result(mesh["json"]))
    assert [e["name"] for e in entries] == PARTS  # no unlabeled faces: no unlabeled entry
    assert [e["color"] for e in entries] == [list(PALETTE[0]), list(PALETTE[1])]
    assert [e["count"] for e in entries] == [int((fl == 0).sum()), int((fl == 1).sum())]
    np.testing.assert_allclose([e["share"] for e in entries], [areas[fl == i].sum() / areas.sum() for i in (0, 1)])
    # The shares `segment` prints and the API returns are the legend's.
    np.testing.assert_allclose(read_result(mesh["json"]).part_shares(), [e["share"] for e in entries])

    labels = cloud["labels"]
    entries = legend_entries(read_result(cloud["json"]))
    assert [e["name"] for e in entries] == [*PARTS, "(unlabeled)"]
    assert entries[-1]["color"] == list(UNLABELED_COLOR) and entries[-1]["count"] == 5
    np.testing.assert_allclose([e["share"] for e in entries], [(labels == i).mean() for i in (0, 1, -1)])
    np.testing.assert_allclose(read_result(cloud["json"]).part_shares(), [e["share"] for e in entries[:2]])


def test_large_meshes_get_32_bit_indices():
    grid = trimesh.creation.box().subdivide_to_size(0.01, max_iter=20)
    assert len(grid.vertices) > 65536
    shape = from_mesh(grid.vertices, grid.faces, n_points=64)
    labels = np.zeros(len(grid.faces), np.int64)
    result = SegmentResult(
        "big", "mesh", shape, ["all"], np.array([PALETTE[0]], np.uint8), labels, np.ones(len(labels))
    )
    data = viewer_data(result)
    assert data["indices"]["dtype"] == "uint32"
    np.testing.assert_array_equal(decode(data["indices"]).reshape(-1, 3), grid.faces)


def test_part_names_cannot_break_out_of_the_page(mesh):
    result = read_result(mesh["json"])
    result.parts = ["</script><script>alert(1)</script>", "a@@DATA@@b"]
    page = viewer_html(result)
    assert page.count("</script>") == 3  # the data block, three.js and the viewer script close; nothing else
    assert page_data(page)["parts"] == result.parts


def test_template_slots_are_filled_once():
    assert _fill("<@@A@@|@@B@@>", A="@@B@@", B="x") == "<@@B@@|x>"


def test_segment_outputs_write_the_page_and_the_explain_sheet_together(tmp_path):
    explain = png_bytes()
    r = mesh_result(tmp_path, html=True, explain=explain)
    names = sorted(p.name for p in r["written"])
    assert names == [
        "thing.explain.png",
        "thing.labels.json",
        "thing.labels.npy",
        "thing.parts.ply",
        "thing.viewer.html",
    ]
    assert (r["out"] / "thing.explain.png").read_bytes() == explain
    data = page_data((r["out"] / "thing.viewer.html").read_text())
    assert data["explain"] == "data:image/png;base64," + base64.b64encode(explain).decode()


def test_segment_refuses_to_replace_an_existing_page(tmp_path):
    r = mesh_result(tmp_path, html=True)
    before = (r["out"] / "thing.viewer.html").read_bytes()
    for p in r["written"][:-1]:
        p.unlink()  # only the page is left in the way
    with pytest.raises(OutputError, match=r"thing\.viewer\.html: already exists \(pass --overwrite to replace it\)"):
        write_segment_outputs(r["input"], r["shape"], r["labels"], r["out"], html=True)
    assert (r["out"] / "thing.viewer.html").read_bytes() == before
    assert sorted(p.name for p in r["out"].iterdir()) == ["thing.viewer.html"]  # nothing else was written


def test_export_html_of_a_result_shows_the_explain_sheet_beside_it(tmp_path):
    r = mesh_result(tmp_path)
    explain = png_bytes((200, 10, 10))
    (r["out"] / "thing.explain.png").write_bytes(explain)
    (page,) = export_results(r["json"], "html", tmp_path / "x")
    assert page.name == "thing.viewer.html"
    assert page_data(page.read_text())["explain"].endswith(base64.b64encode(explain).decode())
    assert not (tmp_path / "x" / "index.html").exists()  # one result: no index


def test_export_html_of_a_folder_writes_an_index_linking_every_page(tmp_path):
    a = mesh_result(tmp_path / "a")
    cloud_result(tmp_path / "b", name="cloud", out=a["out"])
    preview = png_bytes((0, 0, 255), size=(720, 400))
    (a["out"] / "thing.preview.png").write_bytes(preview)
    result = CliRunner().invoke(app, ["export", str(a["out"]), "--format", "html"])
    assert result.exit_code == 0, result.output
    out = a["out"] / "export"
    assert sorted(p.name for p in out.iterdir()) == ["cloud.viewer.html", "index.html", "thing.viewer.html"]
    index = (out / "index.html").read_text()
    assert re.findall(r'<a class="card" href="([^"]+)"', index) == ["cloud.viewer.html", "thing.viewer.html"]
    thumbs = [
        Image.open(io.BytesIO(base64.b64decode(s))) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', index)
    ]
    assert len(thumbs) == 2 and all(t.width == 360 for t in thumbs)
    # thing's thumbnail is its preview sheet, shrunk; the cloud had none, so one was rendered.
    assert thumbs[1].size == (360, 200) and thumbs[1].convert("RGB").getpixel((180, 100)) == (0, 0, 255)
    again = CliRunner().invoke(app, ["export", str(a["out"]), "--format", "html"])
    assert isinstance(again.exception, OutputError)
    assert str(again.exception).endswith("cloud.viewer.html: already exists (pass --overwrite to replace it)")


# ---- in a real browser ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip(NO_CHROMIUM)
    with headless_chromium() as driver:
        yield driver


def shade_share(pixels: np.ndarray, rgb) -> float:
    """Share of the non-white pixels that are a shade of `rgb` (k * rgb for a brightness k in [0.25, 1.3]):
    lighting only scales a surface's colour."""
    px = pixels.reshape(-1, 3).astype(np.float64)
    shape = ~(px > 245).all(axis=1)
    c = np.asarray(rgb, dtype=np.float64)
    k = px @ c / (c @ c)
    near = np.linalg.norm(px - k[:, None] * c, axis=1) < 14
    return float((shape & near & (k > 0.25) & (k < 1.3)).sum() / max(shape.sum(), 1))


def visible_element(driver, elements) -> dict:
    """The first of `elements` (face / point indices) whose centre is visible on screen, with its client pixel."""
    points = driver.execute_script(
        "return arguments[0].map(i => window.partdistillViewer.project(i))", [int(i) for i in elements]
    )
    for i, p in zip(elements, points, strict=True):
        if p["visible"]:
            return {"element": int(i), **p}
    raise AssertionError("none of the elements is visible from the default view")


def tooltip(driver, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = driver.execute_script(
            "const t = document.getElementById('pd-tip'); return t.hidden ? '' : t.textContent"
        )
        if text:
            return text
        time.sleep(0.02)
    return ""


def test_mesh_page_draws_every_part_colour_with_no_console_error(browser, mesh):
    state = open_viewer(browser, mesh["written"][-1])
    assert state["ready"] and state["error"] is None and state["parts"] == PARTS
    assert console_errors(browser) == []
    pixels = canvas_pixels(browser)
    assert pixels.shape[1] == 700  # the canvas fills the viewport left of the 300-pixel sidebar
    assert shade_share(pixels, PALETTE[0]) > 0.3 and shade_share(pixels, PALETTE[1]) > 0.05
    assert not browser.find_element(By.ID, "pd-explain").is_displayed()  # no explain sheet given
    # Nothing was fetched: the page carries everything it needs.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_legend_entry_toggles_its_part_off_and_on(browser, mesh):
    open_viewer(browser, mesh["written"][-1])
    entry = browser.find_element(By.CSS_SELECTOR, '.pd-part[data-entry="1"]')
    assert entry.text.split() == ["handle", f"{legend_entries(read_result(mesh['json']))[1]['share']:.1%}"]
    before = frames(browser)
    entry.click()
    hidden = canvas_pixels(browser, after_frame=before)
    assert shade_share(hidden, PALETTE[1]) == 0 and shade_share(hidden, PALETTE[0]) > 0.3
    assert "off" in entry.get_attribute("class")
    before = frames(browser)
    entry.click()
    assert shade_share(canvas_pixels(browser, after_frame=before), PALETTE[1]) > 0.05
    assert console_errors(browser) == []


def test_hovering_a_face_shows_its_part_and_confidence(browser, mesh):
    open_viewer(browser, mesh["written"][-1])
    fl = mesh["face_labels"]
    for part, name in enumerate(PARTS):
        face = visible_element(browser, np.flatnonzero(fl == part))
        move_mouse(browser, face["x"], face["y"])
        assert tooltip(browser) == f"{name} · confidence 0.80"
        click_mouse(browser, face["x"], face["y"])
        info = browser.execute_script("return document.getElementById('pd-info').textContent")
        assert info == f"face {face['element']}: {name} · confidence 0.80"
    move_mouse(browser, 5, 5)  # a corner of the canvas: background, no part
    time.sleep(0.2)
    assert tooltip(browser, timeout=0.2) == ""
    assert console_errors(browser) == []


def test_drag_orbits_and_the_wheel_zooms(browser, mesh):
    open_viewer(browser, mesh["written"][-1])
    corners = [0, 1]  # the centroids of two faces, on screen
    where = "return arguments[0].map(i => window.partdistillViewer.project(i))"
    start = browser.execute_script(where, corners)
    drag_mouse(browser, 350, 330, 450, 330)
    turned = browser.execute_script(where, corners)
    assert all(np.hypot(a["x"] - b["x"], a["y"] - b["y"]) > 10 for a, b in zip(start, turned, strict=True))
    assert browser.execute_script("return document.getElementById('pd-info').textContent").startswith("click on")
    gap = np.hypot(turned[0]["x"] - turned[1]["x"], turned[0]["y"] - turned[1]["y"])
    scroll_wheel(browser, 350, 330, -300)
    time.sleep(0.2)
    zoomed = browser.execute_script(where, corners)
    assert np.hypot(zoomed[0]["x"] - zoomed[1]["x"], zoomed[0]["y"] - zoomed[1]["y"]) > 1.1 * gap
    assert console_errors(browser) == []


def test_confidence_heat_map_replaces_the_part_colours(browser, mesh):
    open_viewer(browser, mesh["written"][-1])
    before = frames(browser)
    browser.find_element(By.ID, "pd-mode-confidence").click()
    pixels = canvas_pixels(browser, after_frame=before)
    viridis_at_0_8 = 0.8 * np.array([94, 201, 98]) + 0.2 * np.array([253, 231, 37])  # a fifth from stop 0.75 to 1
    assert shade_share(pixels, PALETTE[0]) < 0.01 and shade_share(pixels, PALETTE[1]) < 0.01
    assert shade_share(pixels, viridis_at_0_8) > 0.5
    assert browser.find_element(By.ID, "pd-heat").is_displayed()


def test_point_cloud_page_shows_points_and_their_parts(browser, cloud):
    state = open_viewer(browser, cloud["page"])
    assert state["ready"] and state["parts"] == [*PARTS, "(unlabeled)"]
    pixels = canvas_pixels(browser)
    assert shade_share(pixels, PALETTE[0]) > 0.2 and shade_share(pixels, PALETTE[1]) > 0.2
    labels = cloud["labels"]
    point = visible_element(browser, np.flatnonzero(labels == 1))
    move_mouse(browser, point["x"], point["y"])
    assert tooltip(browser) == "handle · confidence 0.70"
    assert console_errors(browser) == []


def test_explain_sheet_is_shown_beside_the_shape(browser, tmp_path):
    r = mesh_result(tmp_path, html=True, explain=png_bytes(size=(64, 48)))
    open_viewer(browser, r["out"] / "thing.viewer.html")
    assert browser.find_element(By.ID, "pd-explain").is_displayed()
    assert browser.execute_script("return document.getElementById('pd-explain-image').naturalWidth") == 64
    browser.find_element(By.ID, "pd-explain-toggle").click()
    assert not browser.find_element(By.ID, "pd-explain").is_displayed()
    assert browser.find_element(By.ID, "pd-explain-toggle").text == "show the teacher's views"
    assert console_errors(browser) == []


def test_hostile_part_names_show_as_text(browser, mesh, tmp_path):
    result = read_result(mesh["json"])
    result.parts = ["<img src=x onerror=alert(1)>", "</script>"]
    page = tmp_path / "hostile.viewer.html"
    page.write_text(viewer_html(result))
    state = open_viewer(browser, page)
    assert state["ready"] and state["parts"] == result.parts
    names = browser.execute_script("return [...document.querySelectorAll('.pd-name')].map(e => e.textContent)")
    assert names == result.parts
    assert console_errors(browser) == []


def test_index_cards_open_their_viewer(browser, tmp_path):
    a = mesh_result(tmp_path / "a")
    cloud_result(tmp_path / "b", name="cloud", out=a["out"])
    export_results(a["out"], "html")
    browser.get((a["out"] / "export" / "index.html").as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "a.card")
    assert [c.find_element(By.TAG_NAME, "b").text for c in cards] == ["cloud", "thing"]
    assert all(
        browser.execute_script("return arguments[0].naturalWidth", img) == 360
        for img in browser.find_elements(By.TAG_NAME, "img")
    )
    cards[1].click()
    deadline = time.monotonic() + 20
    while not browser.execute_script("return !!(window.partdistillViewer && window.partdistillViewer.ready)"):
        assert time.monotonic() < deadline, "the linked viewer did not load"
        time.sleep(0.05)
    assert browser.current_url.endswith("/thing.viewer.html")
    assert console_errors(browser) == []


def test_a_browser_without_webgl_gets_a_message_not_a_blank_page(mesh):
    if find_chromium() is None:
        pytest.skip(NO_CHROMIUM)
    with headless_chromium(extra_flags=("--disable-3d-apis",)) as driver:
        state = open_viewer(driver, mesh["written"][-1])
        assert not state["ready"] and state["error"].startswith("this viewer needs WebGL")
        box = driver.find_element(By.ID, "pd-error")
        assert box.is_displayed() and box.text == state["error"]
