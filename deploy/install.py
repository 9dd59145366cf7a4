"""`init`: the installation folder, its secrets, key pair, .env and example actions — re-runnable.

Everything here is created only when absent; a second run reports "exists, kept" for each path
and leaves every byte as it was.
"""

from __future__ import annotations

from .files import CREATED, KEPT, UPDATED, Outcome, create_if_absent, ensure_dir, write_atomic
from .layout import ENV_LINE, TEMPLATES_DIR, Layout, parse_env, templates
from .secrets import (
    PLACEHOLDERS,
    PRIVATE_KEY,
    PUBLIC_KEY,
    SECRET_NAMES,
    ensure_key_pair,
    ensure_secrets,
    read_secrets,
)

# The example actions package init puts in actions/ when it has none of these files; then the
# files are the user's (their own actions replace them).
EXAMPLE_ACTIONS = TEMPLATES_DIR / "actions"


def example_actions(layout: Layout) -> dict:
    """Installation path → content of each example action file."""
    return {layout.actions / p.name: p.read_text() for p in sorted(EXAMPLE_ACTIONS.glob("*.py"))}


def render_env(project: str, secrets: dict[str, str]) -> str:
    return templates().get_template("env.j2").render(
        project=project, secrets=secrets, private_key=PRIVATE_KEY, public_key=PUBLIC_KEY
    )


def missing_env_lines(current_text: str, wanted: str) -> list[str]:
    """The lines of the wanted .env whose variable the current one lacks."""
    current = parse_env(current_text)
    return [line for line in wanted.splitlines() if (m := ENV_LINE.match(line)) and m.group(1) not in current]


def ensure_env(layout: Layout, project: str, secrets: dict[str, str]) -> Outcome:
    """Create .env; on an existing one only append the variables it lacks (an upgrade adding some)."""
    wanted = render_env(project, secrets)
    outcome = create_if_absent(layout.env_file, wanted, 0o600)
    if outcome.action != KEPT:
        return outcome
    current_text = layout.env_file.read_text()
    missing = missing_env_lines(current_text, wanted)
    if not missing:
        return outcome
    addition = "\n# added by a newer rasax-deploy\n" + "\n".join(missing) + "\n"
    write_atomic(layout.env_file, current_text.rstrip("\n") + "\n" + addition, 0o600)
    return Outcome(layout.env_file, UPDATED)


def initialize(layout: Layout, project: str = "rasa") -> list[Outcome]:
    outcomes = [ensure_dir(path, mode, owner) for path, mode, owner in layout.folders()]
    current_env = parse_env(layout.env_file.read_text()) if layout.env_file.exists() else None
    outcomes += ensure_secrets(layout.credentials, current_env)
    outcomes += ensure_key_pair(layout.auth)
    outcomes.append(ensure_env(layout, project, read_secrets(layout.credentials)))
    for path, text in example_actions(layout).items():
        outcomes.append(create_if_absent(path, text, 0o644))
    return outcomes


def pending(layout: Layout, project: str = "rasa") -> list[Outcome]:
    """What `initialize` would create or update, touching nothing (for `up --dry-run`)."""
    paths = [path for path, _, _ in layout.folders()]
    paths += [layout.credentials / name for name in SECRET_NAMES]
    paths += [layout.auth / PRIVATE_KEY, layout.auth / PUBLIC_KEY, layout.env_file]
    paths += list(example_actions(layout))
    outcomes = [Outcome(path, CREATED) for path in paths if not path.exists()]
    # Only the variable names count here, not the secret values.
    if layout.env_file.exists() and missing_env_lines(layout.env_file.read_text(),
                                                      render_env(project, dict.fromkeys(SECRET_NAMES, ""))):
        outcomes.append(Outcome(layout.env_file, UPDATED))
    return outcomes


def unsafe_values(env: dict[str, str]) -> list[str]:
    """Secrets in .env that are missing or placeholders: `up` refuses to start with any of them."""
    return [name for name in SECRET_NAMES if env.get(name, "").strip().lower() in PLACEHOLDERS]
