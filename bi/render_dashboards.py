"""Open each dashboard in headless Chromium, wait for every chart, and report what rendered.

Run with the BI virtualenv's Python (it has Selenium); the browser is Debian's `chromium` with its
`chromedriver`. Prints one JSON object: per dashboard, its charts' titles, which rendered and which
showed an error, and the screenshot's path.

    .venv-bi/bin/python bi/render_dashboards.py --url http://127.0.0.1:8088 --password PW \\
        --out data/bi/screenshots customer-value community-health ...
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

# In the page: every chart holder, whether it is still loading, its error if any, whether it drew.
STATE = """
return Array.from(document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')).map(h => {
  const title = (h.querySelector('[data-test="editable-title"], .header-title, .editable-title') || {}).innerText || '';
  const error = h.querySelector('.ant-alert-error, [role="alert"], [data-test="error-tooltip"]');
  const loading = h.querySelector('[data-test="loading-indicator"], .loading');
  const drawn = h.querySelector('canvas, svg, table, .big_number, .header-line, .superset-legacy-chart-big-number');
  const box = h.getBoundingClientRect();
  return {title: title.trim(), error: error ? error.innerText.trim().slice(0, 300) || 'error' : null,
          loading: !!loading, drawn: !!drawn, height: box.height};
});
"""


def browser(width: int = 1600, height: int = 2200) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=zh-CN"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def log_in(
    driver: webdriver.Chrome, url: str, user: str, password: str, timeout: float = 120, try_wait: float = 20
) -> None:
    """Sign in through the login form, filling it again when a submit is lost.

    On a loaded machine the form can be drawn before its script is ready, and an Enter typed then does
    nothing (the page stays on /login with the fields cleared); each try reloads the page and types again.
    """
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        tries += 1
        driver.get(f"{url}/login/")
        if not _fill_login_form(driver, user, password, deadline):
            continue
        wait_until = min(deadline, time.monotonic() + try_wait)
        while time.monotonic() < wait_until:
            if "/login" not in driver.current_url:
                return
            time.sleep(0.5)
    page = driver.find_element(By.TAG_NAME, "body").text[:300] if driver.find_elements(By.TAG_NAME, "body") else ""
    raise RuntimeError(f"the login did not go through after {tries} tries at {driver.current_url}: {page!r}")


def _fill_login_form(driver: webdriver.Chrome, user: str, password: str, deadline: float) -> bool:
    """Type the credentials and press Enter once the page has finished loading; False if no form came."""
    while time.monotonic() < deadline:
        ready = driver.execute_script("return document.readyState") == "complete"
        fields = driver.find_elements(By.CSS_SELECTOR, 'input[name="username"], input#username')
        secrets = driver.find_elements(
            By.CSS_SELECTOR, 'input[name="password"], input#password, input[type="password"]'
        )
        if ready and fields and secrets:
            try:
                fields[0].clear()
                fields[0].send_keys(user)
                secrets[0].clear()
                secrets[0].send_keys(password, Keys.ENTER)
                return True
            except StaleElementReferenceException:  # the script drew the form again: find it again
                pass
        time.sleep(0.5)
    return False


def render(driver: webdriver.Chrome, url: str, slug: str, out: Path, timeout: float = 120) -> dict:
    driver.get(f"{url}/superset/dashboard/{slug}/?standalone=1")
    deadline = time.monotonic() + timeout
    charts: list[dict] = []
    settled = 0
    while time.monotonic() < deadline:
        charts = driver.execute_script(STATE)
        done = charts and all(c["error"] or (c["drawn"] and not c["loading"]) for c in charts)
        settled = settled + 1 if done else 0
        if settled >= 3:  # the same for a moment: animations and late queries have finished
            break
        time.sleep(0.5)
    # The whole dashboard in one picture: the window as tall as the page.
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1600, max(900, min(int(height) + 100, 6000)))
    time.sleep(1)
    shot = out / f"{slug}.png"
    driver.save_screenshot(str(shot))
    return {"slug": slug, "charts": charts, "timed_out": settled < 3, "screenshot": str(shot)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("slugs", nargs="+")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    driver = browser()
    try:
        log_in(driver, args.url, args.user, args.password)
        results = [render(driver, args.url, slug, args.out) for slug in args.slugs]
    finally:
        driver.quit()
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
