"""Headless Chromium over the DevTools protocol: print a page to PDF as a browser would, and
measure it under print media first. Used by the test that prints the board paper."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

# A4's width less the paper's @page side margins (14 mm each): the content box, in CSS px.
CONTENT_WIDTH_PX = (210 - 2 * 14) / 25.4 * 96
STARTUP_POLLS = 1200  # two minutes: Chromium starts slowly on a busy machine
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str | None:
    """Debian's chromium (or Chrome) if installed."""
    return next(
        (
            found
            for name in ("chromium", "chromium-browser", "google-chrome")
            if (found := shutil.which(name))
        ),
        None,
    )


class Browser:
    """One headless Chromium with one page, driven over its DevTools websocket."""

    def __init__(self, executable: str, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.log_path = profile / "chromium.log"
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.ids = itertools.count(1)
        try:
            self.socket = websocket.create_connection(self._page_url(), timeout=60)
        except BaseException:
            self.process.kill()  # a browser that never answered must not outlive the test
            self.log.close()
            raise

    def _page_url(self) -> str:
        """The page's websocket, once Chromium says where its DevTools server listens."""
        for _ in range(STARTUP_POLLS):
            found = LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                break
            time.sleep(0.1)  # Chromium's own start-up, not the code under test
        else:
            raise RuntimeError("Chromium did not start its DevTools server")
        port = found.group(1).split(":")[2].split("/")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            targets = json.load(answer)
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are skipped)."""
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def wait_for(self, event: str) -> None:
        while json.loads(self.socket.recv()).get("method") != event:
            pass

    def open_for_print(self, path: Path) -> None:
        """Load `path` laid out as it prints: print media, the A4 content box's width."""
        self.call("Page.enable")
        self.call("Emulation.setEmulatedMedia", media="print")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=int(CONTENT_WIDTH_PX),
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def pdf(self) -> bytes:
        """The page printed as Chromium prints it: its CSS page size, backgrounds, no header."""
        self.call("Emulation.clearDeviceMetricsOverride")
        result = self.call(
            "Page.printToPDF",
            preferCSSPageSize=True,
            printBackground=True,
            displayHeaderFooter=False,
        )
        return base64.b64decode(result["data"])

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
