"""Values in PostgreSQL's text formats: COPY's rows and array constants.

The store sends its data this way because it costs PostgreSQL (and psycopg2) far less than
one bound parameter per value: see `array_literal`.
"""

from __future__ import annotations

NULL = "\\N"


def copy_text(value: str | None) -> str:
    """A value in COPY's text format (tab-separated, backslash escapes, \\N for NULL)."""
    if value is None:
        return NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def copy_bytes(value: bytes) -> str:
    """A bytea in COPY's text format (hex, its backslash escaped for COPY)."""
    return f"\\\\x{value.hex()}"


def array_literal(values: list) -> str:
    """One array constant ('{...}') for a `%s::type[]` parameter.

    psycopg2 sends a list as ARRAY[v1, v2, ...]: PostgreSQL then parses and plans every element
    as an expression of its own, which cost more CPU than the inserts that use them.
    """
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        if "\\" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{value}"'
    if isinstance(value, bool):
        return "t" if value else "f"
    return repr(value)  # int or finite float: both read back exactly
