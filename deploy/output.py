"""How the installer talks: one headline per step, one line per change, or JSON lines for machines.

Every JSON line about something the installer did (a path, a container, a network, a volume, an
image, the Docker engine) carries `"changed": true|false`, decided here from the outcome or the
state, never from the wording of a message: the Ansible role reads that field only. Steps and
notes are progress for people and carry no `changed`.
"""

from __future__ import annotations

import json
import sys
import time

from .files import Outcome

# States of a container, network, volume, image or engine that leave the host as it was.
UNCHANGED_STATES = frozenset({"kept", "unchanged", "present", "running", "waiting", "healthy"})


class Output:
    def __init__(self, as_json: bool = False, quiet: bool = False, stream=None):
        self.as_json = as_json
        self.quiet = quiet
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.changed = False  # whether anything reported so far changed the host

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def _emit(self, text: str, record: dict) -> None:
        if record.get("changed"):
            self.changed = True
        if self.as_json:
            record["t"] = round(self.elapsed(), 2)
            self._print(json.dumps(record))
        elif not self.quiet:
            self._print(text)

    def step(self, title: str) -> None:
        self._emit(f"▶ {title}", {"step": title})

    def outcome(self, outcome: Outcome, root=None) -> None:
        path = outcome.path
        shown = path.relative_to(root) if root is not None and path.is_relative_to(root) and path != root else path
        self._emit(f"  {outcome.action:<13} {shown}",
                   {"path": str(path), "action": outcome.action, "changed": outcome.changed})

    def note(self, text: str) -> None:
        self._emit(f"  {text}", {"note": text})

    def event(self, name: str, state: str, changed: bool | None = None, **details) -> None:
        """A container, network, volume, image or the engine reached `state`.

        `changed` defaults to what the state says; a caller that knows better (an image rebuilt or
        not, a dry run's plan) passes it.
        """
        if changed is None:
            changed = state not in UNCHANGED_STATES
        extra = ""
        if "seconds" in details:
            extra = f" ({details['seconds']} s)"
        if "on" in details:
            extra = f" for {details['on']} ({details['condition'].replace('service_', '')})"
        elif details.get("health"):
            extra += f", health: {details['health']}"
        if "reason" in details:
            extra += f": {details['reason']}"
        kind = details.pop("kind", "service")
        self._emit(f"  {name:<16} {state}{extra}",
                   dict({"kind": kind, "name": name, "state": state, "changed": changed}, **details))

    def final(self, headline: str, *more: str, **record) -> None:
        """The closing line (and, unless -q, lines of advice after it)."""
        if self.as_json:
            self._emit(headline, dict({"done": True, "changed": self.changed}, **record))
            return
        self._print(headline)  # -q keeps exactly this line
        if not self.quiet:
            for line in more:
                self._print(line)

    def failed(self, message: str) -> None:
        """In JSON, a closing line for a run that failed: what it changed before failing still counts."""
        if self.as_json:
            self._emit(message, {"done": False, "error": message, "changed": self.changed})
