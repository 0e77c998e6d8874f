"""A live Dealflow server in a thread and a Chromium driven by Playwright, for browser tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
INSTALL_HINT = (
    "the browser tests drive Debian's Chromium at {path}: `sudo apt-get install -y chromium` "
    "(`make test` does this for you), or set CHROMIUM_PATH to a Chromium binary"
)
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class LiveServer:
    """The app served by uvicorn on 127.0.0.1:``port`` in a background thread."""

    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(app: Any) -> LiveServer:
    """Start ``app`` on a free local port; returns once it answers."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the live server did not start within 20 s")
        threading.Event().wait(0.05)  # polling the start flag, not waiting for time to pass
    return LiveServer(server, thread, port)


def screenshot(page: Any, name: str, tmp_dir: Path, focus: Any = None) -> Path:
    """Save ``page`` as ``console-<name>.png`` in ``tmp_dir``, and in the directory named by
    DEALFLOW_SCREENSHOTS (``docs/img``) when set: the pictures docs/console.md shows. With
    ``focus`` (a locator), the page is scrolled to it first."""
    if focus is not None:
        focus.scroll_into_view_if_needed()
    path = tmp_dir / f"console-{name}.png"
    page.screenshot(path=str(path), full_page=False)
    target = os.environ.get("DEALFLOW_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shipped = Path(target) / f"console-{name}.png"
        page.screenshot(path=str(shipped), full_page=False)
        _shrink(shipped)
    return path


def _shrink(path: Path) -> None:
    """Re-save a screenshot with a 64-colour palette: a page of text stays sharp at a third
    of the size (the docs keep each picture under 150 KB)."""
    from PIL import Image  # matplotlib's dependency, in the test extras

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
