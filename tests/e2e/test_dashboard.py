"""`dockyard dashboard` in a real browser (Debian's Chromium, headless, through Selenium and
Debian's chromium-driver) against the testbed: three apps, a deploy seen live, the latency
chart after a load, a rollback from the page; the token, the origin and the CSRF header
required. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import HTTP_PORT, hello_config
from tests.helpers import REPO, dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


class Dashboard:
    def __init__(self, cfg: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "dockyard", "-c", str(cfg),
                                      "dashboard"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:"), (line, self.proc.stderr.read()
                                                      if self.proc.stderr else "")
        self.url = line
        self.base = line.split("/?", 1)[0]
        self.token = line.split("token=", 1)[1]
        self.port = int(self.base.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fetch(url: str, *, headers: dict[str, str] | None = None, method: str = "GET",
          data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM.exists() and DRIVER.exists(), "testbed/up installs chromium and its driver"
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--disable-gpu"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(what: str, check: object, seconds: float = 30) -> object:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = check()  # type: ignore[operator]
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {seconds}s (last: {last!r})")


def test_the_dashboard_shows_three_apps_live_and_rolls_back_from_the_page(
        clean: None, tmp_path: Path, browser: object) -> None:
    driver = browser
    names = ["dash-one", "dash-two", "dash-three"]
    cfgs = {n: hello_config(tmp_path / n, name=n) for n in names}
    # dash-two's deploys hold its lock a while (a slow release command): long enough to be
    # seen live on a page that refreshes every 3 s
    text = cfgs["dash-two"].read_text()
    cfgs["dash-two"].write_text(text.replace("[env]", '[release]\ncommand = ["sleep", "8"]\n'
                                             "[env]"))
    for n in names:
        run = dockyard("-c", str(cfgs[n]), "deploy", timeout=300)
        assert run.returncode == 0, run.output[-2000:]
    text = cfgs["dash-one"].read_text()
    cfgs["dash-one"].write_text(text.replace('VERSION = "v1"', 'VERSION = "v2"'))
    assert dockyard("-c", str(cfgs["dash-one"]), "deploy", timeout=300).returncode == 0

    board = Dashboard(cfgs["dash-one"])
    try:
        # without the token: refused, whatever the path; another origin or a forged action too
        for path in ("/", "/app/dash-one", "/api/overview", "/static/app.js", "/events"):
            assert fetch(board.base + path)[0] == 401, path
        cookie = {"Cookie": f"dockyard_dashboard={board.token}"}
        assert fetch(board.base + "/", headers={**cookie, "Origin": "http://evil.test"})[0] \
            == 403
        assert fetch(board.base + "/", headers={**cookie, "Host": "evil.test"})[0] == 403
        forged = fetch(board.base + "/api/action", method="POST", headers={
            **cookie, "Content-Type": "application/json"},
            data=b'{"action": "restart", "app": "dash-one", "confirm": true}')
        assert forged[0] == 403, forged
        status, _ = fetch(board.url)  # the token once: a cookie, and the address without it
        assert status == 303

        started = time.monotonic()
        driver.get(board.url)  # type: ignore[attr-defined]
        paint = driver.execute_script(  # type: ignore[attr-defined]
            "const p = performance.getEntriesByName('first-contentful-paint')[0];"
            "return p ? p.startTime : null")
        print(f"first load of the overview: {time.monotonic() - started:.3f}s, first "
              f"contentful paint {paint} ms after the redirect")
        assert "token=" not in driver.current_url  # type: ignore[attr-defined]
        html = driver.page_source  # type: ignore[attr-defined]
        for n in names:  # named with their release, with no user action
            assert re.search(rf">{n}</a> <span class=\"release\">v[12]</span>", html), n
        assert "dash-one</a> <span class=\"release\">v2" in html

        # a deploy run meanwhile appears live (its lock, held by the slow release command)
        deploy = subprocess.Popen([sys.executable, "-m", "dockyard", "-c",
                                   str(cfgs["dash-two"]), "deploy"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            busy = wait_for("the running deploy on the overview", lambda: [
                e.text for e in driver.find_elements("css selector",  # type: ignore[attr-defined]
                                                     '[data-app="dash-two"] .busy')], 30)
            assert "deploy running" in busy[0], busy  # type: ignore[index]
            driver.save_screenshot(str(ARTIFACTS / "dashboard-overview.png"))  # type: ignore[attr-defined]
        finally:
            out, _ = deploy.communicate(timeout=300)
        assert deploy.returncode == 0, out[-2000:]
        wait_for("dash-two's v2 on the overview", lambda: "v2" in driver.find_element(  # type: ignore[attr-defined]
            "css selector", '[data-app="dash-two"] .release').text, 30)

        # the latency chart has points after a load
        with Load(HTTP_PORT, "dash-one.test", threads=2, max_seconds=12) as load:
            time.sleep(12)
        assert load.report.ok > 20
        driver.get(f"{board.base}/app/dash-one")  # type: ignore[attr-defined]
        points = wait_for("points on the latency chart", lambda: driver.execute_script(  # type: ignore[attr-defined]
            "return window.dockyard.charts['chart-latency'] && "
            "window.dockyard.charts['chart-latency'].data[0].length"), 30)
        assert int(points) >= 1  # type: ignore[call-overload]
        driver.save_screenshot(str(ARTIFACTS / "dashboard-app.png"))  # type: ignore[attr-defined]

        # a rollback from the page: its plan first, then, confirmed, the command itself
        driver.find_element("css selector", 'button[data-action="rollback"][data-arg="v1"]'  # type: ignore[attr-defined]
                            ).click()
        plan = wait_for("the rollback's plan", lambda: driver.find_element(  # type: ignore[attr-defined]
            "id", "plan").text, 60)
        assert "explain" in str(plan) and "docker" in str(plan), plan
        driver.find_element("id", "confirm").click()  # type: ignore[attr-defined]
        wait_for("the rollback done on the page", lambda: "✔ done" in driver.find_element(  # type: ignore[attr-defined]
            "id", "action").text, 120)
        assert "is live" in driver.find_element("id", "action").text  # type: ignore[attr-defined]
        driver.save_screenshot(str(ARTIFACTS / "dashboard-rollback.png"))  # type: ignore[attr-defined]
    finally:
        board.stop()
    history = json.loads(dockyard("-c", str(cfgs["dash-one"]), "--json", "history").stdout)
    rollbacks = [e for e in history if e["subcommand"] == "rollback" and e["app"] == "dash-one"]
    assert rollbacks and rollbacks[-1]["outcome"] == "ok", history[-3:]
    assert dockyard("-c", str(cfgs["dash-one"]), "status").output.count("v3") >= 1
    assert os.path.exists(ARTIFACTS / "dashboard-app.png")
