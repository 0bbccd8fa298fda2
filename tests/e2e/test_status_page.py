"""The /status page in a real headless Chromium against a real `haven up` cluster."""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support_cluster import clean_env, consecutive_free_ports, haven_cmd, spawn, wait_for

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("headless Chromium not installed: apt-get install chromium chromium-driver")
    return browser, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _rows(driver: Any) -> dict[str, str]:
    """instance -> state as the page shows it (read in one script: the table re-renders)."""
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('#instances tbody tr'))"
        ".map(r => [r.dataset.instance, r.dataset.state]);"
    )
    return dict(pairs)


def _console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_status_page_lists_instances_and_marks_a_stopped_one(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base = consecutive_free_ports(5)
    lb_port, instance_base = base, base + 2
    env = clean_env(
        HAVEN_ENV="development",
        LOG_LEVEL="warning",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'haven.db'}",
    )
    args = haven_cmd(
        "up",
        "--instances",
        "3",
        "--lb",
        "nginx",
        "--lb-port",
        str(lb_port),
        "--base-port",
        str(instance_base),
        "--runtime-dir",
        str(tmp_path / "run"),
    )
    with spawn(args, env, tmp_path / "up.log") as up:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{lb_port}/health", timeout=1).is_success,
            120,
            "the cluster to answer",
        )
        token = wait_for(
            lambda: re.search(r"Bearer (\S+)", up.output()), 30, "the operator token"
        ).group(1)

        browser.get(f"http://127.0.0.1:{lb_port}/status")
        # Keyboard only: focus is on the token field; type and press Enter.
        field = browser.switch_to.active_element
        assert field.get_attribute("id") == "token"
        field.send_keys("not-the-token-at-all")
        field.send_keys(Keys.ENTER)
        wait_for(
            lambda: "not the operator token" in browser.find_element(By.ID, "signin-error").text,
            10,
            "the wrong-token message",
        )
        # The refused sign-in shows up as one failed request; nothing else may have errored.
        assert all(re.search(r"status of 40[13]", m) for m in _console_errors(browser))
        field = browser.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token, Keys.ENTER)

        wait_for(
            lambda: _rows(browser) == {"api-1": "ready", "api-2": "ready", "api-3": "ready"},
            20,
            "three ready instances on the page",
        )
        served = browser.find_element(By.ID, "served-by").text
        assert re.search(r"served by api-[123]", served), served
        assert browser.find_element(By.ID, "dep-redis").text == "healthy"
        assert browser.find_element(By.ID, "dep-database").text == "healthy"

        # Stop api-3 for good: the page marks it draining/gone within a refresh or two.
        api3 = next(
            p
            for p in up.tree()
            if "--port" in p.cmdline()
            and p.cmdline()[p.cmdline().index("--port") + 1] == str(instance_base + 2)
        )
        api3.send_signal(signal.SIGTERM)
        wait_for(lambda: _rows(browser).get("api-3") in ("draining", "gone"), 15, "api-3 marked")
        wait_for(lambda: _rows(browser).get("api-3") == "gone", 30, "api-3 shown as gone")
        assert {k: v for k, v in _rows(browser).items() if k != "api-3"} == {
            "api-1": "ready",
            "api-2": "ready",
        }

        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "status-page.png"))
        browser.set_window_size(390, 844)  # a phone
        browser.save_screenshot(str(ARTIFACTS / "status-page-narrow.png"))
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, f"page overflows a narrow screen: {width}px"
        assert _console_errors(browser) == []

        up.signal(signal.SIGINT)
        assert up.wait(90) == 0
