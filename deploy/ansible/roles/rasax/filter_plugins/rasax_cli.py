"""Reads the JSON lines of `rasax-deploy ... --json` so the role reports `changed` only when the CLI
says it changed something: each line about a path, container, network, volume, image or the
Docker engine carries `"changed": true|false`, decided by the CLI's library. The role reads that
field only, never the wording of a message.
"""

import json


def _records(stdout):
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def rasax_changes(stdout):
    """The records of a --json run that changed something (or, for --dry-run, would)."""
    return [record for record in _records(stdout) if record.get("changed") is True and "done" not in record]


class FilterModule:
    def filters(self):
        return {"rasax_changes": rasax_changes}
