"""Headless Chromium for the tests that open pages in a browser (test_browser, test_autograde's
feedback pages, test_exchange through the hub): where Chromium and its driver are, what the
browser tests lack here, and starting it. conftest's ``chromium`` fixture skips (fails under
CI) what needs it when something is missing."""
import os

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing():
    """What the browser tests lack here, by name: Chromium, its driver, Selenium."""
    lacking = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401 (only whether it is installed)
    except ImportError:
        lacking.append("selenium (pip)")
    return lacking


def start_chromium(workdir):
    """Headless Chromium driven by Selenium, its profile and driver's log in ``workdir``."""
    # Selenium is imported here, where a browser test runs: the tests that need none (and
    # a machine without Selenium) can import this module.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1280,1400", f"--user-data-dir={workdir / 'chromium-profile'}",
                # the formgrader's pages ask a CDN for MathJax (feedback pages' formulas are
                # MathML, with no script): answer at once that no such host exists
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    return driver
