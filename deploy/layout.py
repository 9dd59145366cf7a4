"""Where everything of one installation lives, its `.env` as the services and compose read it, and
the templates every rendered file comes from. Every other module of `deploy` builds on this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from . import TEMPLATES_DIR
from .secrets import SERVICE_UID

ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


@dataclass(frozen=True)
class Layout:
    """Where everything of one installation lives."""

    root: Path

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials"

    @property
    def auth(self) -> Path:
        return self.root / "auth"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def nginx_config(self) -> Path:
        return self.root / "nginx-config"

    @property
    def actions(self) -> Path:
        """The custom actions package the action server (`app`) serves: the user's code."""
        return self.root / "actions"

    @property
    def compose_file(self) -> Path:
        return self.root / "docker-compose.yml"

    @property
    def override_file(self) -> Path:
        return self.root / "docker-compose.override.yml"

    @property
    def state_file(self) -> Path:
        return self.root / "rasax-state.json"

    def folders(self) -> list[tuple[Path, int, tuple[int, int] | None]]:
        """(folder, mode, owner) — models and logs are written by the services (uid 1001)."""
        service = (SERVICE_UID, 0)
        return [
            (self.root, 0o755, None),
            (self.root / "models", 0o750, service),
            (self.root / "logs", 0o750, service),
            (self.certs, 0o700, None),
            (self.nginx_config, 0o755, None),
            (self.actions, 0o755, None),
        ]


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def parse_env(text: str) -> dict[str, str]:
    """The subset of the .env syntax compose itself reads: KEY=VALUE, comments, optional quotes."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = ENV_LINE.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[match.group(1)] = value
    return values


def read_env(layout: Layout) -> dict[str, str]:
    if not layout.env_file.exists():
        raise FileNotFoundError(f"{layout.env_file} does not exist: run `rasax-deploy init --dir {layout.root}`")
    return parse_env(layout.env_file.read_text())
