"""The admin dashboard in a real browser: Debian's headless chromium driven by Selenium
through chromedriver (both installed by .ci/run). Log in through the admin form, see one row
per worker with the pids the stats server reports, updated by the page's script without a
reload, take a screenshot, press "Graceful reload" and watch the new pids arrive."""

import os
import shutil
import signal
import struct

import psutil
import pytest

from tests.dashboard import (
    PASSWORD,
    stats_path,
    stats_pids,
)
from tests.server import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
PAGE_TIMEOUT = 30


def _require_browser():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        if os.environ.get("CI"):  # .ci/run installs them: a skip there would hide a broken CI
            pytest.fail(f"missing {', '.join(missing)}")
        pytest.skip(f"missing {', '.join(missing)}; .ci/run installs chromium, "
                    f"chromium-driver and selenium")


@pytest.fixture
def browser(tmp_path):
    """A headless chromium; at teardown quit, then kill by pid whatever outlived quit()."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    processes = [psutil.Process(service.process.pid)]
    try:
        driver.set_page_load_timeout(PAGE_TIMEOUT)
        driver.set_script_timeout(PAGE_TIMEOUT)
        yield driver
    finally:
        try:
            processes += processes[0].children(recursive=True)
        except psutil.Error:
            pass
        try:
            driver.quit()
        finally:
            _, alive = psutil.wait_procs(processes, timeout=10)
            for proc in alive:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            psutil.wait_procs(alive, timeout=5)


def row_pids(driver):
    """The pids of the worker rows, read in one go (the script replaces rows meanwhile)."""
    return sorted(driver.execute_script(
        "return Array.from(document.querySelectorAll('#workers tbody tr'),"
        " function (row) { return Number(row.dataset.pid); });"))


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return len(data), width, height


def test_dashboard_in_chromium(start_server, tmp_path, dashboard_project, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    stats = stats_path(tmp_path)
    server = start_server(["--http-socket", "127.0.0.1:0", "--processes", "3", "--stats", stats],
                          env=dashboard_project.env)
    wait_for(lambda: len(stats_pids(stats)) == 3, 30, "three workers in the stats")
    wait = WebDriverWait(browser, PAGE_TIMEOUT)

    browser.get(f"{server.url}/uwsgi/")  # anonymous: sent to the admin login form
    wait.until(expected_conditions.presence_of_element_located((By.ID, "id_username")))
    browser.find_element(By.ID, "id_username").send_keys("boss")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(lambda d: d.current_url.endswith("/uwsgi/"))
    wait.until(lambda d: len(row_pids(d)) == 3)
    assert row_pids(browser) == stats_pids(stats) == server.worker_pids()

    # The script refreshes the rows without reloading the page: a mark left on the
    # document survives while the figures change (the requests count grows with polls).
    browser.execute_script("window.dashboardMark = 1;")
    first = browser.find_element(By.ID, "updated").text
    wait.until(lambda d: d.find_element(By.ID, "updated").text not in (first, ""))
    assert "failed" not in browser.find_element(By.ID, "updated").text
    assert browser.execute_script("return window.dashboardMark") == 1
    assert row_pids(browser) == stats_pids(stats)

    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot))
    print(f"dashboard screenshot: {shot}")
    size, width, height = png_size(shot)
    assert (width, height) == tuple(browser.execute_script(
        "return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio]"))
    assert 20_000 < size < 5_000_000, size  # a rendered page, not a blank one
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr td")]
    assert len(cells) == 3 * 10 and "MiB" in " ".join(cells)

    before = set(row_pids(browser))
    browser.find_element(By.ID, "reload-graceful").click()
    wait.until(expected_conditions.alert_is_present()).accept()
    WebDriverWait(browser, 60).until(
        lambda d: (lambda pids: len(pids) == 3 and not set(pids) & before)(row_pids(d)))
    message = browser.find_element(By.CSS_SELECTOR, ".message.success").text
    assert message.startswith(f"Sent SIGHUP (graceful reload) to the runuwsgi master "
                              f"(pid {server.pid})")
    wait_for(lambda: set(row_pids(browser)) == set(stats_pids(stats)), 30,
             "the rows to show the pids the stats report")
    assert "graceful reload asked by boss from the dashboard" in server.stderr()
    shot_after = tmp_path / "dashboard-after-reload.png"
    browser.save_screenshot(str(shot_after))
    print(f"dashboard screenshot after the reload: {shot_after}")
