"""`python -m gans.demo` in a real browser: the app served on localhost from a tiny checkpoint,
driven by headless Chromium (Debian's `chromium`, through Playwright), its output image checked to
appear and to change, and a screenshot kept. Every request the page makes must stay on localhost
(the app works without internet)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools.test_demo import tiny_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no chromium: run `make install` (as root)"),
    # Gradio 6's queue calls pandas options that pandas 3 deprecates: noise, not ours.
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*", "ignore:The copy keyword is deprecated"),
]
sync_playwright = pytest.importorskip("playwright.sync_api", reason="no playwright: run `make install`").sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> Iterator[dict[str, str]]:
    """{model: URL} of two demos served on free localhost ports by `gans.tools.demo.serve`, what
    `python -m gans.demo ckpt_path=... port=...` runs (in this process: one import of Gradio and
    torch instead of one per app): a class-conditional generator and Pix2pix."""
    from gans.tools.demo import serve

    root = tmp_path_factory.mktemp("demo")
    served, urls = [], {}
    try:
        for model in ("toy_cgan", "pix2pix"):
            port = free_port()
            served.append(serve([f"ckpt_path={tiny_run(root / model, model)}", f"port={port}"], block=False))
            urls[model] = f"http://127.0.0.1:{port}/"
        yield urls
    finally:
        for app in served:
            app.close()


@pytest.fixture
def page() -> Iterator:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.outside_requests = []
        page.on("request", lambda r: None if r.url.startswith(LOCAL) else page.outside_requests.append(r.url))
        yield page
        browser.close()


LOCAL = ("http://127.0.0.1", "data:", "blob:")
OUTPUT = "#output img"


def wait_for_new_output(page, old_src: str | None) -> str:
    """The src of the output image once it differs from `old_src` (Gradio names the files it
    serves after their content, so a new src is a new image)."""
    page.wait_for_function(
        "old => { const img = document.querySelector('#output img'); return img && img.src && img.src !== old; }",
        arg=old_src or "",
        timeout=30_000,
    )
    return page.locator(OUTPUT).get_attribute("src")


def keep_screenshot(page, path: Path) -> None:
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def test_latent_sliders_and_class_picker_change_the_generated_image(apps, page, tmp_path):
    page.goto(apps["toy_cgan"])
    first = wait_for_new_output(page, None)  # the image of the initial controls is there on load
    page.locator("#t input[type=range]").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # t: 0 -> 0.2
    moved = wait_for_new_output(page, first)
    page.locator("#label input").click()
    page.get_by_role("option", name="Trouser").click()
    wait_for_new_output(page, moved)
    assert page.locator("#t input[type=number]").input_value() == "0.2"
    keep_screenshot(page, tmp_path / "demo_cgan.png")
    assert page.outside_requests == []


def test_pix2pix_translates_what_is_drawn_on_the_sketch_pad(apps, page, tmp_path):
    page.goto(apps["pix2pix"])
    canvas = page.locator("#sketch canvas").first
    canvas.wait_for()
    assert page.locator(OUTPUT).count() == 0  # nothing drawn, nothing translated
    page.locator("#sketch button[aria-label=Brush]").click()
    box = canvas.bounding_box()
    x, y = box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 0.3 * box["width"], y + 0.3 * box["height"], steps=4)
    page.mouse.up()
    wait_for_new_output(page, None)
    keep_screenshot(page, tmp_path / "demo_pix2pix.png")
    assert page.outside_requests == []


def test_a_busy_port_is_a_one_line_error(apps, tmp_path):
    from gans.errors import GansError
    from gans.tools.demo import serve

    busy = apps["toy_cgan"].rsplit(":", 1)[1].strip("/")
    with pytest.raises(GansError, match=f"cannot serve on 127.0.0.1:{busy} .*: pass another port=..."):
        serve([f"ckpt_path={tiny_run(tmp_path / 'run', 'toy_mmd')}", f"port={busy}"], block=False)
