"""A real headless Chromium driven by Selenium, for the viewer page's tests and its benchmark.

Uses the system's chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`). The driver's
path is given to Selenium explicitly, so Selenium Manager (which would download a browser or driver) never
runs; nothing is fetched at test time. WebGL runs on SwiftShader, Chromium's CPU implementation.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Flags that work as root in a container with no GPU and no network: no sandbox (root), software WebGL, and
# none of the browser's own network traffic.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_chromium() -> tuple[str, str] | None:
    """(browser, chromedriver) executables found on PATH, or None when either is missing."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


NO_CHROMIUM = (
    "no chromium + chromedriver on PATH (Debian: apt-get install chromium chromium-driver); "
    "the viewer's in-browser tests need a real browser"
)


@contextlib.contextmanager
def headless_chromium(width: int = 1000, height: int = 700, extra_flags: tuple[str, ...] = ()) -> Iterator:
    """A Selenium Chrome driver on a fresh profile whose viewport is `width` x `height` CSS pixels at scale 1;
    `extra_flags` are added to the browser's command line."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_chromium()
    if found is None:
        raise RuntimeError(NO_CHROMIUM)
    os.environ.setdefault("SE_OFFLINE", "true")  # belt and braces: Selenium Manager must never download
    with tempfile.TemporaryDirectory(prefix="partdistill-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = found[0]
        for flag in (*FLAGS, *extra_flags, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(found[1]), options=options)
        try:
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            yield driver
        finally:
            driver.quit()


def open_viewer(driver, page: Path, timeout: float = 30.0) -> dict:
    """Load a viewer page and wait until it has drawn its first frame (or reported an error).

    Returns the page's `window.partdistillViewer` state {"ready", "error", "loadMs", "parts"}; raises
    TimeoutError if the page neither gets ready nor fails within `timeout` seconds.
    """
    driver.get(Path(page).resolve().as_uri())
    deadline = time.monotonic() + timeout
    script = "const v = window.partdistillViewer; return v && {ready: v.ready, error: v.error, loadMs: v.loadMs, parts: v.parts || null}"
    while time.monotonic() < deadline:
        state = driver.execute_script(script)
        if state and (state["ready"] or state["error"]):
            return state
        time.sleep(0.02)
    raise TimeoutError(f"{page} did not get ready within {timeout} s")


def console_errors(driver) -> list[str]:
    """The browser console's error messages since the last call (uncaught exceptions, failed loads, console.error)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def canvas_pixels(driver, after_frame: int | None = None, timeout: float = 10.0) -> np.ndarray:
    """(H, W, 3) uint8 screenshot of the viewer's canvas; with `after_frame`, first wait until the page has drawn
    a frame after that one (its `frames` counter passed it)."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    if after_frame is not None:
        deadline = time.monotonic() + timeout
        while driver.execute_script("return window.partdistillViewer.frames") <= after_frame:
            if time.monotonic() > deadline:
                raise TimeoutError("the viewer drew no new frame")
            time.sleep(0.02)
    png = driver.find_element(By.ID, "pd-canvas").screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def frames(driver) -> int:
    """How many frames the viewer has drawn so far."""
    return int(driver.execute_script("return window.partdistillViewer.frames"))


def move_mouse(driver, x: float, y: float) -> None:
    """Move the real (CDP-dispatched) mouse to client pixel (x, y), as a user's pointer would."""
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})


def click_mouse(driver, x: float, y: float) -> None:
    """Press and release the left button at client pixel (x, y)."""
    for kind in ("mousePressed", "mouseReleased"):
        driver.execute_cdp_cmd(
            "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
        )


def drag_mouse(driver, x0: float, y0: float, x1: float, y1: float, steps: int = 8) -> None:
    """Drag with the left button from client pixel (x0, y0) to (x1, y1) in `steps` moves."""
    mouse = {"button": "left", "clickCount": 1}
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x0, "y": y0, **mouse})
    for k in range(1, steps + 1):
        x, y = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
        driver.execute_cdp_cmd(
            "Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y, "buttons": 1, **mouse}
        )
    driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x1, "y": y1, **mouse})


def scroll_wheel(driver, x: float, y: float, delta_y: float) -> None:
    """Turn the mouse wheel at client pixel (x, y) (negative `delta_y`: away from the user, i.e. zoom in)."""
    driver.execute_cdp_cmd(
        "Input.dispatchMouseEvent", {"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": delta_y}
    )
