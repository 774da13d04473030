"""Load a page in the system's headless Chromium and read back what a reader would see.

Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages ending in NUL, commands on fd 3, answers and events on fd 4), so no
Python package and no browser download are needed, only Debian's `chromium`.
`find_or_install_chromium` installs it with apt where it is missing and we are root.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VIEWPORT = (1280, 900)
TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 900
# What the page reports about itself once loaded: every image's decoded and laid-out size.
PAGE_PROBE = """JSON.stringify({
  title: document.title,
  images: [...document.images].map(i => ({complete: i.complete, natural_width: i.naturalWidth,
    natural_height: i.naturalHeight, width: i.getBoundingClientRect().width,
    height: i.getBoundingClientRect().height, alt: i.alt, src: i.src.slice(0, 30)})),
  scripts: document.scripts.length,
  text: document.body.innerText,
})"""


@dataclass
class LoadedPage:
    """What the browser saw: console errors, requests, the probe's answer, a screenshot."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)
    screenshot_png: bytes = b""


def find_or_install_chromium() -> str | None:
    """The path of `chromium`, installed from Debian's packages first where it is missing.

    Returns None where it is missing and cannot be installed (not root, no apt-get, or
    the install failed); the caller skips with that reason.
    """
    found = shutil.which("chromium")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for step in ([*install], ["apt-get", "update", "-q"], [*install]):
        done = subprocess.run(step, env=env, capture_output=True, timeout=INSTALL_TIMEOUT_S)
        if done.returncode == 0 and shutil.which("chromium"):
            break
    return shutil.which("chromium")


class _Pipe:
    """The DevTools protocol over the browser's pipe: commands by id, events queued."""

    def __init__(self, chromium: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: its fd 3 reads commands, fd 4 answers
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",  # containers often give /dev/shm 64 MB
                "--no-first-run",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),  # kept open after wire_fds has put the pipes there
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._answers: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]].put(message)
                    else:
                        self.events.put(message)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and wait for its answer; a protocol error fails the test."""
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            self._answers[message_id] = queue.Queue()
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        answer = self._answers[message_id].get(timeout=TIMEOUT_S)
        assert "error" not in answer, f"{method}: {answer['error']}"
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close")
        finally:
            os.close(self._to_browser)
            self.process.wait(timeout=TIMEOUT_S)


def load_page(chromium: str, path: Path) -> LoadedPage:
    """Open `path` in a fresh headless Chromium, wait for its load event, probe it.

    Console errors, uncaught exceptions and browser log errors (a blocked or failed load)
    are collected, and every request the page made. The screenshot covers the whole page.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        pipe = _Pipe(chromium, Path(profile))
        try:
            return _visit(pipe, Path(path).resolve().as_uri())
        finally:
            pipe.close()


def _visit(pipe: _Pipe, url: str) -> LoadedPage:
    target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session)
    width, height = VIEWPORT
    pipe.send(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    pipe.send("Page.navigate", session, url=url)
    page = LoadedPage()
    while True:
        event = pipe.events.get(timeout=TIMEOUT_S)
        if event.get("sessionId") != session:
            continue
        _record(event, page)
        if event["method"] == "Page.loadEventFired":
            break
    answer = pipe.send("Runtime.evaluate", session, expression=PAGE_PROBE, returnByValue=True)
    page.probe = json.loads(answer["result"]["value"])
    content = pipe.send("Page.getLayoutMetrics", session)["cssContentSize"]
    shot = pipe.send(
        "Page.captureScreenshot",
        session,
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": width, "height": content["height"], "scale": 1},
    )
    page.screenshot_png = base64.b64decode(shot["data"])
    while not pipe.events.empty():
        event = pipe.events.get()
        if event.get("sessionId") == session:
            _record(event, page)
    return page


def _record(event: dict[str, Any], page: LoadedPage) -> None:
    method, params = event["method"], event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
        page.errors.append(
            " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
        )
    elif method == "Runtime.exceptionThrown":
        page.errors.append(params["exceptionDetails"].get("text", "exception"))
    elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
        page.errors.append(params["entry"]["text"])
    elif method == "Network.requestWillBeSent":
        page.requests.append(params["request"]["url"])
