"""One headless Chromium per test process, shared by every module that drives it.

Playwright's sync API runs one event loop per process: a second `sync_playwright()` while the
first is running fails, so the fixtures of tests/ui and tests/e2e take the browser from here.
"""

from __future__ import annotations

_state: dict = {"users": 0, "playwright": None, "browser": None}


def acquire(executable: str):
    from playwright.sync_api import sync_playwright

    if _state["browser"] is None:
        _state["playwright"] = sync_playwright().start()
        # --no-sandbox: the tests run as root, which Chromium's sandbox refuses.
        _state["browser"] = _state["playwright"].chromium.launch(executable_path=executable, headless=True,
                                                                 args=["--no-sandbox"])
    _state["users"] += 1
    return _state["browser"]


def release() -> None:
    _state["users"] -= 1
    if _state["users"] == 0:
        _state["browser"].close()
        _state["playwright"].stop()
        _state["browser"] = _state["playwright"] = None
