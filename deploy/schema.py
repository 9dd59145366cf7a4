"""Validation of a rendered compose file against the Compose Specification JSON schema.

The machine may be offline, so the schema is taken from a package that ships it: Debian's
docker-compose (1.29, `compose/config/compose_spec.json`), found on its install path or as the
importable `compose` package.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

_CANDIDATES = (
    Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json"),
    Path("/usr/local/lib/python3/dist-packages/compose/config/compose_spec.json"),
)


def find_compose_schema() -> Path | None:
    for path in _CANDIDATES:
        if path.is_file():
            return path
    try:
        import compose.config  # docker-compose installed with pip

        path = Path(compose.config.__file__).parent / "compose_spec.json"
        return path if path.is_file() else None
    except ImportError:
        return None


def compose_errors(text: str, schema_path: Path) -> list[str]:
    """Every schema violation of a compose document, as `path: message` lines (empty when valid)."""
    schema = json.loads(schema_path.read_text())
    document = yaml.safe_load(text)
    # docker-compose 1.29's copy names its draft with a URI jsonschema does not know by that spelling.
    if "2019-09" in schema.get("$schema", ""):
        validator = jsonschema.Draft201909Validator(schema)
    else:
        validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
