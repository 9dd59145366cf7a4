"""Reads the JSON lines of `rasax-deploy ... --json` so the role reports `changed` only when the CLI
changed something. Anything not known to be a no-op counts as a change: a new kind of line must
never hide one.
"""

import json

# What the CLI prints for a path, a network/volume/container, or a note when it left it alone.
_KEPT_ACTIONS = {"exists, kept", "unchanged"}
_KEPT_STATES = {"kept", "unchanged", "healthy", "waiting"}
_KEPT_NOTE_ENDINGS = (": exists, kept", "), kept", ": present", "not touched", "Docker engine: running")


def _records(stdout):
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                yield {"unparsed": line}


def _is_change(record):
    if "action" in record:
        return record["action"] not in _KEPT_ACTIONS
    if "state" in record:
        return record["state"] not in _KEPT_STATES
    if "note" in record:
        return not record["note"].endswith(_KEPT_NOTE_ENDINGS)
    return "step" not in record and "done" not in record


def rasax_changes(stdout):
    """The records of a --json run that changed something (empty when nothing changed)."""
    return [record for record in _records(stdout) if _is_change(record)]


class FilterModule:
    def filters(self):
        return {"rasax_changes": rasax_changes}
