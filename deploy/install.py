"""`init`: the installation folder, its secrets, key pair, .env and Rasa files — re-runnable.

Everything here is created only when absent; a second run reports "exists, kept" for each path
and leaves every byte as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from . import TEMPLATES_DIR
from .files import KEPT, UPDATED, Outcome, create_if_absent, ensure_dir, write_atomic
from .secrets import (
    PLACEHOLDERS,
    PRIVATE_KEY,
    PUBLIC_KEY,
    SECRET_NAMES,
    SERVICE_UID,
    ensure_key_pair,
    ensure_secrets,
    read_secrets,
)

RASA_FILES = ("endpoints.yml", "credentials.yml", "environments.yml")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


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
        ]


def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_env(project: str, secrets: dict[str, str]) -> str:
    return templates().get_template("env.j2").render(
        project=project, secrets=secrets, private_key=PRIVATE_KEY, public_key=PUBLIC_KEY
    )


def parse_env(text: str) -> dict[str, str]:
    """The subset of the .env syntax compose itself reads: KEY=VALUE, comments, optional quotes."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
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


def ensure_env(layout: Layout, project: str, secrets: dict[str, str]) -> Outcome:
    """Create .env; on an existing one only append the variables it lacks (an upgrade adding some)."""
    wanted = render_env(project, secrets)
    outcome = create_if_absent(layout.env_file, wanted, 0o600)
    if outcome.action != KEPT:
        return outcome
    current_text = layout.env_file.read_text()
    current = parse_env(current_text)
    missing = [line for line in wanted.splitlines() if (m := _ENV_LINE.match(line)) and m.group(1) not in current]
    if not missing:
        return outcome
    addition = "\n# added by a newer rasax-deploy\n" + "\n".join(missing) + "\n"
    write_atomic(layout.env_file, current_text.rstrip("\n") + "\n" + addition, 0o600)
    return Outcome(layout.env_file, UPDATED)


def initialize(layout: Layout, project: str = "rasa") -> list[Outcome]:
    outcomes = [ensure_dir(path, mode, owner) for path, mode, owner in layout.folders()]
    outcomes += ensure_secrets(layout.credentials)
    outcomes += ensure_key_pair(layout.auth)
    outcomes.append(ensure_env(layout, project, read_secrets(layout.credentials)))
    env = templates()
    for name in RASA_FILES:
        text = env.get_template(f"rasa/{name}.j2").render()
        outcomes.append(create_if_absent(layout.root / name, text, 0o644))
    return outcomes


def unsafe_values(env: dict[str, str]) -> list[str]:
    """Secrets in .env that are missing or placeholders: `up` refuses to start with any of them."""
    return [name for name in SECRET_NAMES if env.get(name, "").strip().lower() in PLACEHOLDERS]
