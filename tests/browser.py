"""A headless Chromium for the page tests, through Selenium's WebDriver: Debian's `chromium` and `chromium-driver`
(.ci/run installs them as root, as it does the SLURM packages). Where either is missing the test skips, saying
which; a browser that a Python package would download at install time cannot be fetched on these machines."""
from __future__ import annotations

import shutil

import pytest


def chromium():
    """A started headless Chromium (quit it when done) that records the page's console messages."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("no Chromium and ChromeDriver here (apt-get install chromium chromium-driver; .ci/run does "
                    "so as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1600", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path)
    return webdriver.Chrome(options=options, service=service)
