"""``plankflux review`` driven in headless Chromium, as a person would use it.

Loads a tiny proposal folder, accepts a page, reassigns one image (type-ahead), marks
one wrong, marks one "can't decide" and undoes it, reloads the tab, accepts the rest,
finishes, and checks that ``verified.csv`` is byte-identical to what ``plankflux
ingest`` writes after the same decisions made by moving and deleting files. A
screenshot is saved as a test artefact (``logs/test-artifacts/review.png``); with
``PLANKFLUX_UPDATE_SCREENSHOT=1`` it also replaces the README's ``docs/img/review.png``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/setup.sh`` installs them
where ``apt-get`` works); skipped, saying so, where they are missing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from review_helpers import checksums, pipeline_like_workspace

from plankflux.hitl.ingest import ingest_verification
from plankflux.hitl.review import ReviewSession
from plankflux.layout import read_scores
from plankflux.review.server import OTHER_TAB, ReviewServer

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "logs" / "test-artifacts"


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium not available (need the chromium and chromedriver programs: "
            "Debian `apt-get install chromium chromium-driver`, which scripts/setup.sh runs "
            "where apt-get works)"
        )
    return browser, driver


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,860")
    service = webdriver.ChromeService(executable_path=driver_path)
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except Exception as err:  # a broken install: say why instead of failing obscurely
        pytest.skip(f"headless Chromium does not start: {err}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(condition, timeout: float = 15.0, what: str = "the page"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Page:
    """The review page in one tab: keys, tiles, progress."""

    def __init__(self, driver, url: str):
        from selenium.webdriver.common.by import By

        self.driver, self.url, self.by = driver, url, By

    def open(self) -> None:
        self.driver.get(self.url)
        self.ready()

    def ready(self) -> None:
        _wait(lambda: self.driver.execute_script("return document.body.dataset.ready"), what="load")

    def press(self, *keys: str) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).send_keys(*keys).perform()

    def text(self, element_id: str) -> str:
        return self.driver.find_element(self.by.ID, element_id).text

    def tiles(self) -> list[tuple[str, str]]:
        """``(particle_id, verdict class or '')`` of the tiles shown."""
        found = []
        for tile in self.driver.find_elements(self.by.CSS_SELECTOR, "#grid .tile"):
            kinds = set(tile.get_attribute("class").split()) - {"tile", "selected"}
            found.append((tile.get_attribute("data-pid"), "".join(sorted(kinds))))
        return found

    def decided(self) -> int:
        return int(self.text("overall-text").split("/")[0])

    def act(self, *keys: str) -> None:
        """Press keys and wait until the count of decisions has changed."""
        before = self.decided()
        self.press(*keys)
        _wait(lambda: self.decided() != before, what=f"the answer to {keys}")


def test_review_in_headless_chromium(browser, tiny_campaign, tmp_path):
    from selenium.webdriver.common.keys import Keys

    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "logs/pipeline/RR")
    ws = folder.parent
    pristine = tmp_path / "pristine"
    shutil.copytree(folder, pristine)  # for the folder workflow
    before = checksums(folder)
    session = ReviewSession(
        folder, campaign, out=ws / "verified.csv", scores=read_scores(ws / "ood/scores.parquet")
    )
    server = ReviewServer(session, page_size=24)
    server.start_in_thread()
    try:
        page = Page(browser, server.url)
        page.open()
        assert page.text("class-name") == "aggregate"
        assert page.text("overall-text") == "0 / 38 decided"
        assert len(browser.find_elements(page.by.CSS_SELECTOR, "#references img")) > 0
        votes = browser.find_element(page.by.CSS_SELECTOR, "#grid .tile .votes").text
        assert votes.startswith("m0: aggregate") and "m1: aggregate" in votes

        page.act(Keys.ENTER)  # accept the page: the three aggregates confirmed
        _wait(lambda: page.text("class-name") == "long_pellet", what="the next class")
        first, second, third = (pid for pid, _ in page.tiles())

        page.press("r")  # reassign the first long pellet, type-ahead
        _wait(lambda: browser.find_element(page.by.ID, "reassign").is_displayed())
        page.act("noi", Keys.ENTER)
        page.act("x")  # the second (selected next) is wrong
        page.act("d")  # the third: can't decide ...
        assert page.tiles() == [(first, "relabelled"), (second, "wrong"), (third, "undecided")]
        page.act("u")  # ... undone
        assert page.tiles() == [(first, "relabelled"), (second, "wrong"), (third, "")]
        assert page.text("overall-text") == "5 / 38 decided"
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTEFACTS / "review.png"))
        if os.environ.get("PLANKFLUX_UPDATE_SCREENSHOT"):
            shutil.copyfile(ARTEFACTS / "review.png", ROOT / "docs" / "img" / "review.png")

        browser.refresh()  # a reloaded tab resumes where it was
        page.ready()
        assert page.text("class-name") == "long_pellet"
        assert page.tiles() == [(first, "relabelled"), (second, "wrong"), (third, "")]
        assert page.text("overall-text") == "5 / 38 decided"

        while page.decided() < 38:  # accept every remaining page
            page.act(Keys.ENTER)
        page.press("f")
        _wait(lambda: "Wrote" in page.text("message"), what="verified.csv")
    finally:
        server.shutdown()

    # The same decisions made in the folder, then `plankflux ingest`.
    manifest = pd.read_csv(pristine / "manifest.csv", dtype=str).set_index("particle_id")
    moved = Path(manifest.loc[first, "image"])
    os.rename(pristine / moved, pristine / "noise" / moved.name)
    os.remove(pristine / manifest.loc[second, "image"])
    ingest_verification(pristine, campaign.classes, tmp_path / "folder_verified.csv")
    ours = (ws / "verified.csv").read_bytes()
    assert ours == (tmp_path / "folder_verified.csv").read_bytes()
    verified = pd.read_csv(ws / "verified.csv", dtype=str, keep_default_na=False)
    assert verified["action"].value_counts().to_dict() == {
        "confirmed": 36,
        "relabelled": 1,
        "rejected": 1,
    }
    assert verified.set_index("particle_id").loc[first, "label"] == "noise"
    assert checksums(folder) == before  # the page never touched the proposal folder


def test_a_second_tab_takes_over_and_the_first_says_so(browser, tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    server = ReviewServer(ReviewSession(folder, campaign))
    server.start_in_thread()
    try:
        page = Page(browser, server.url)
        page.open()
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        page.open()  # the second tab now records
        browser.switch_to.window(first)
        page.press("c")
        _wait(lambda: OTHER_TAB in page.text("message"), what="the other-tab message")
        assert page.decided() == 0 and not session_decisions(folder)
        browser.get(server.url.split("?")[0] + "?token=wrong")
        assert "Wrong or missing token" in browser.find_element(page.by.ID, "error").text
    finally:
        server.shutdown()


def session_decisions(folder: Path) -> dict:
    state = folder.with_name(folder.name + ".review.json")
    if not state.is_file():
        return {}
    import json

    return json.loads(state.read_text())["decisions"]
