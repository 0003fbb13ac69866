"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe`` (stdlib only).

Chromium reads null-terminated JSON messages from file descriptor 3 and writes its answers and
events to file descriptor 4. No port is opened and no third-party package is needed: the only
requirement is a Chromium binary (Debian's ``chromium`` package, ``/usr/bin/chromium``).

    with Browser.launch() as browser:
        tab = browser.new_tab()
        tab.send("Page.navigate", url="http://127.0.0.1:8000/")
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

__all__ = ["Browser", "Tab", "CDPError", "find_chromium", "CHROMIUM_FLAGS"]

#: Flags for a quiet, offline, reproducible browser: nothing is fetched in the background
#: (component updates, sync, safe-browsing lists), QUIC is off, and host names other than
#: localhost do not resolve, so no request can leave the machine even if one slips past the
#: per-page interception.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


class CDPError(RuntimeError):
    """A DevTools command failed, timed out, or the browser went away."""


def find_chromium() -> str | None:
    """Path of a Chromium binary ($CHROMIUM, else chromium/chromium-browser on PATH)."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    """A duplicate of ``fd`` numbered 10 or more (so that dup2 onto 3 and 4 cannot clash)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


class Browser:
    """A headless Chromium process and its DevTools pipe.

    Events are dispatched per session to the handlers registered with :meth:`on`; command
    answers are matched by id. Use as a context manager so the process is always ended.
    """

    def __init__(self, executable: str, extra_flags: tuple[str, ...] = ()):
        self._profile = tempfile.mkdtemp(prefix="certlab-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        child_in, child_out = _high_fd(to_browser_r), _high_fd(from_browser_w)

        def wire_pipes() -> None:  # runs in the child, before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [executable, *CHROMIUM_FLAGS, *extra_flags, f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe", "about:blank"]
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._stderr, preexec_fn=wire_pipes,
                                        close_fds=False)
        for fd in (to_browser_r, from_browser_w, child_in, child_out):
            os.close(fd)
        self._writer = os.fdopen(to_browser_w, "wb", buffering=0)
        self._reader = os.fdopen(from_browser_r, "rb", buffering=0)
        self._next_id = 0
        self._lock = threading.Lock()
        self._pending: dict[int, queue.Queue] = {}
        self._handlers: dict[tuple[str | None, str], list[Callable[[dict], None]]]
        self._handlers = defaultdict(list)
        self._closed = False
        self._thread = threading.Thread(target=self._read_loop, daemon=True)
        self._thread.start()

    @classmethod
    def launch(cls, executable: str | None = None, extra_flags: tuple[str, ...] = ()) -> "Browser":
        executable = executable or find_chromium()
        if executable is None:
            raise FileNotFoundError("no Chromium found: install Debian's chromium package "
                                    "(apt-get install -y chromium) or set $CHROMIUM")
        browser = cls(executable, extra_flags)
        try:
            browser.send("Browser.getVersion", timeout=30)
        except Exception:
            browser.close()
            raise
        return browser

    # -- protocol ---------------------------------------------------------------------------
    def _read_loop(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self._reader.read(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message:
                    waiter = self._pending.pop(message["id"], None)
                    if waiter is not None:
                        waiter.put(message)
                else:
                    key = (message.get("sessionId"), message.get("method"))
                    for handler in list(self._handlers.get(key, ())):
                        handler(message.get("params", {}))
        self._closed = True
        for waiter in list(self._pending.values()):
            waiter.put({"error": {"message": "browser closed the DevTools pipe"}})

    def post(self, method: str, session_id: str | None = None, **params: Any) -> int:
        """Send a command without waiting for its answer; return its id."""
        return self._post(method, session_id, params)[0]

    def _post(self, method: str, session_id: str | None, params: dict) -> tuple[int, queue.Queue]:
        if self._closed:
            raise CDPError(f"browser is gone; cannot send {method}")
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
            waiter: queue.Queue = queue.Queue(maxsize=1)
            self._pending[message_id] = waiter
            message = {"id": message_id, "method": method, "params": params}
            if session_id:
                message["sessionId"] = session_id
            self._writer.write(json.dumps(message).encode() + b"\0")
        return message_id, waiter

    def send(self, method: str, session_id: str | None = None, timeout: float = 30.0,
             **params: Any) -> dict:
        """Send a command and return its result; raise :class:`CDPError` on error/time-out."""
        message_id, waiter = self._post(method, session_id, params)
        try:
            answer = waiter.get(timeout=timeout)
        except queue.Empty:
            self._pending.pop(message_id, None)
            raise CDPError(f"{method}: no answer within {timeout} s") from None
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def on(self, session_id: str | None, method: str, handler: Callable[[dict], None]) -> None:
        self._handlers[(session_id, method)].append(handler)

    def forget(self, session_id: str) -> None:
        for key in [k for k in self._handlers if k[0] == session_id]:
            del self._handlers[key]

    def new_tab(self, width: int = 1400, height: int = 900) -> "Tab":
        target_id = self.send("Target.createTarget", url="about:blank")["targetId"]
        session_id = self.send("Target.attachToTarget", targetId=target_id,
                               flatten=True)["sessionId"]
        tab = Tab(self, target_id, session_id)
        tab.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)
        return tab

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.post("Browser.close")
                self.process.wait(timeout=10)
            except (CDPError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self._writer, self._reader):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Tab:
    """One page (target) of a :class:`Browser`, attached in flat session mode."""

    def __init__(self, browser: Browser, target_id: str, session_id: str):
        self.browser, self.target_id, self.session_id = browser, target_id, session_id

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict:
        return self.browser.send(method, self.session_id, timeout=timeout, **params)

    def post(self, method: str, **params: Any) -> int:
        return self.browser.post(method, self.session_id, **params)

    def on(self, method: str, handler: Callable[[dict], None]) -> None:
        self.browser.on(self.session_id, method, handler)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate JavaScript (awaiting a returned promise); return its JSON value."""
        result = self.send("Runtime.evaluate", timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"JavaScript error: {text}")
        return result["result"].get("value")

    def navigate(self, url: str, timeout: float = 30.0) -> None:
        """Load ``url`` and wait for its load event."""
        loaded = threading.Event()
        self.on("Page.loadEventFired", lambda params: loaded.set())
        self.send("Page.enable")
        answer = self.send("Page.navigate", url=url)
        if answer.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {answer['errorText']}")
        if not loaded.wait(timeout):
            raise CDPError(f"{url}: no load event within {timeout} s")

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        import base64

        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"],
                              "height": min(size["height"], 16000), "scale": 1}
        data = self.send("Page.captureScreenshot", timeout=60, **params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.browser.send("Target.closeTarget", targetId=self.target_id, timeout=10)
        finally:
            self.browser.forget(self.session_id)
