"""Debian's Chromium, headless, driven through ChromeDriver's W3C WebDriver protocol on
127.0.0.1 (the standard library speaks it): pages load as a person's browser loads them, and
their console errors are read back. Installed by scripts/install-checkers."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import free_port, require_installed

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def require_browser() -> None:
    require_installed(Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(),
                      "Chromium and ChromeDriver are not installed: run scripts/install-checkers")


class Browser:
    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.driver: subprocess.Popen[bytes] | None = None
        self.session = ""

    def __enter__(self) -> "Browser":
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "chromedriver.log", "wb")
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={self.port}", "--allowed-ips=127.0.0.1"],
                                       stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        options = {"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage", "--window-size=1400,1000",
                                                f"--user-data-dir={self.folder / 'profile'}"]}
        answer = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": {"browser": "ALL"}}}})
        self.session = answer["sessionId"]
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.session:
                self._call("DELETE", f"/session/{self.session}")
        finally:
            if self.driver is not None:
                self.driver.terminate()
                self.driver.wait(timeout=30)
            self._wait_for_browser_exit()
            shutil.rmtree(self.folder / "profile", ignore_errors=True)

    def _wait_for_browser_exit(self, seconds: float = 20) -> None:
        """Chromium's processes (named by their profile folder) end after the session: the test
        leaves none behind; one that outlives the wait is killed."""
        marker = f"--user-data-dir={self.folder / 'profile'}"
        deadline = time.monotonic() + seconds
        while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                subprocess.run(["pkill", "-KILL", "-f", marker], check=False)
                break
            time.sleep(0.2)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                value = json.load(answer)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"WebDriver {method} {path}: {err.read(2000).decode(errors='replace')}") from None
        return value.get("value", value)

    def _in_session(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def open(self, url: str) -> None:
        self._in_session("POST", "/url", {"url": url})

    def title(self) -> str:
        return str(self._in_session("GET", "/title"))

    def _elements(self, css: str) -> list[str]:
        found = self._in_session("POST", "/elements", {"using": "css selector", "value": css})
        return [element[ELEMENT] for element in found]

    def texts(self, css: str, visible_only: bool = False) -> list[str]:
        """Each matching element's text as rendered (a hidden one's is empty, so left out
        when `visible_only`)."""
        texts = [str(self._in_session("GET", f"/element/{e}/text")) for e in self._elements(css)]
        return [t for t in texts if t] if visible_only else texts

    def click(self, css: str) -> None:
        found = self._elements(css)
        assert found, f"no element {css} on the page"
        self._in_session("POST", f"/element/{found[0]}/click", {})

    def type_into(self, css: str, text: str) -> None:
        self._in_session("POST", f"/element/{self._elements(css)[0]}/value", {"text": text})

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._in_session("GET", "/screenshot")))

    def console_errors(self) -> list[str]:
        """The console's errors since the last call (an uncaught exception, a failed load)."""
        entries = self._in_session("POST", "/se/log", {"type": "browser"})
        return [e["message"] for e in entries if e.get("level") == "SEVERE"]
