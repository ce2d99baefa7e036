"""The report page in a real browser: headless Chromium driven through Selenium.

Skipped, with the reason, only when Chromium or its driver is missing and PASSK_REQUIRE_BROWSER
is unset; CI installs Debian's chromium and chromium-driver and sets it, so there the test runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from passk_plugin.report import build_report, collect_run, tables

from .conftest import WIDE_TASKS

WIDTH, HEIGHT = 1280, 900
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _browser_paths() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    paths = _browser_paths()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if paths is None or webdriver is None:
        why = (
            "chromium and chromedriver not found (apt-get install chromium chromium-driver)"
            if paths is None
            else "selenium not installed (pip install -e '.[test]')"
        )
        if os.environ.get("PASSK_REQUIRE_BROWSER"):
            pytest.fail(f"PASSK_REQUIRE_BROWSER is set but {why}")
        pytest.skip(why)
    chromium, driver_path = paths
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    # The viewport itself 1280 CSS px wide, whatever window decorations headless mode keeps.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
    )
    yield driver
    driver.quit()


def _open(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.execute_script("return window.innerWidth") == WIDTH


def _overflow(driver) -> tuple[int, int]:
    return driver.execute_script(
        "var d = document.documentElement; return [d.scrollWidth, d.clientWidth];"
    )


def _check_page(driver, page: Path, shot: Path) -> None:
    _open(driver, page)
    scroll, client = _overflow(driver)
    assert scroll <= client, f"page scrolls sideways at {WIDTH} px: {scroll} > {client}"
    head = driver.execute_script("return document.getElementById('headline').innerText")
    assert head.strip() and "Pass@1" in head, head
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]);"
    )
    assert images, "no plots on the page"
    for alt, complete, width in images:
        assert complete and width > 0, f"image does not decode: {alt}"
    # The headline and the key plot are both on the first screen.
    top = driver.execute_script(
        "return [document.getElementById('headline').getBoundingClientRect().top,"
        " document.querySelector('figure.key img').getBoundingClientRect().top];"
    )
    assert all(0 <= y < HEIGHT for y in top), top
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def _column_values(driver, col: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#board tbody tr'))"
        f".map(r => r.cells[{col}].getAttribute('data-v'));"
    )


def test_wide_report_fits_1280_and_sorts(browser, wide_run, tmp_path):
    build_report(wide_run)
    page = wide_run / "report" / "leaderboard.html"
    _check_page(browser, page, tmp_path / "wide_report_1280.png")

    from selenium.webdriver.common.by import By

    board = tables.build_leaderboard(collect_run(wide_run))
    key = f"{WIDE_TASKS[1]}/pass@1"
    col = 3 + [c.key for c in board.columns].index(key)
    before = _column_values(browser, col)
    header = browser.find_element(By.CSS_SELECTOR, f'#board th[data-col="{col}"]')
    header.click()
    ascending = _column_values(browser, col)
    assert ascending != before
    assert ascending == sorted(before, key=float)
    header.click()
    assert _column_values(browser, col) == sorted(before, key=float, reverse=True)
    # The "all metrics" toggle shows the hidden columns; the page still does not scroll
    # sideways (the table scrolls inside its own box).
    hidden = 'document.querySelectorAll("#board th.extra")'
    assert browser.execute_script(f"return {hidden}[0].offsetWidth") == 0
    browser.find_element(By.CSS_SELECTOR, "input.toggle-all").click()
    assert browser.execute_script(f"return {hidden}[0].offsetWidth") > 0
    scroll, client = _overflow(browser)
    assert scroll <= client
    browser.save_screenshot(str(tmp_path / "wide_report_all_metrics.png"))


@pytest.mark.slow
def test_real_demo_report_in_the_browser(browser, tmp_path_factory, tmp_path):
    from passk_plugin.demo.run import DemoConfig, run_demo

    files = run_demo(tmp_path_factory.mktemp("demo"), DemoConfig.quick(), progress=False)
    _check_page(browser, Path(files["leaderboard.html"]), tmp_path / "demo_report_1280.png")
