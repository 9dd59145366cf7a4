"""Validation of a rendered compose file against the Compose Specification JSON schema.

The schema ships with this package (deploy/compose-spec/, the copy docker-compose 1.29 validates
against; its README says where it comes from and its licence), so every render is checked on
any machine, offline, with no docker-compose installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

COMPOSE_SCHEMA = Path(__file__).resolve().parent / "compose-spec" / "compose-spec.json"


def find_compose_schema() -> Path:
    """The shipped schema; its absence is a broken installation, never a reason to skip the check."""
    if not COMPOSE_SCHEMA.is_file():
        raise FileNotFoundError(f"{COMPOSE_SCHEMA} is missing: reinstall rasax-deploy (it is package data)")
    return COMPOSE_SCHEMA


def compose_errors(text: str, schema_path: Path = COMPOSE_SCHEMA) -> list[str]:
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
