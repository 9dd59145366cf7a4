"""How the installer talks: one headline per step, one line per change, or JSON lines for machines."""

from __future__ import annotations

import json
import sys
import time

from .files import Outcome


class Output:
    def __init__(self, as_json: bool = False, quiet: bool = False, stream=None):
        self.as_json = as_json
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _emit(self, text: str, record: dict) -> None:
        if self.as_json:
            record["t"] = round(self.elapsed(), 2)
            print(json.dumps(record), file=self.stream, flush=True)
        elif not self.quiet:
            print(text, file=self.stream, flush=True)

    def step(self, title: str) -> None:
        self._emit(f"▶ {title}", {"step": title})

    def outcome(self, outcome: Outcome, root=None) -> None:
        path = outcome.path
        shown = path.relative_to(root) if root is not None and path.is_relative_to(root) and path != root else path
        self._emit(f"  {outcome.action:<13} {shown}", {"path": str(path), "action": outcome.action})

    def note(self, text: str) -> None:
        self._emit(f"  {text}", {"note": text})

    def event(self, name: str, state: str, **details) -> None:
        extra = ""
        if "seconds" in details:
            extra = f" ({details['seconds']} s)"
        if "on" in details:
            extra = f" for {details['on']} ({details['condition'].replace('service_', '')})"
        elif details.get("health"):
            extra += f", health: {details['health']}"
        if "reason" in details:
            extra += f": {details['reason']}"
        kind = details.get("kind", "service")
        self._emit(f"  {name:<16} {state}{extra}", dict({"kind": kind, "name": name, "state": state}, **details))

    def final(self, text: str, **record) -> None:
        if self.quiet and not self.as_json:  # -q keeps exactly this line
            print(text, file=self.stream, flush=True)
            return
        self._emit(text, dict({"done": True}, **record))
