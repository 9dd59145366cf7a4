"""Start a Rasa server of the stack: `python /opt/rasax/start.py ARGS` runs `rasa ARGS` in this
process, with each ${NAME} in ARGS replaced by the environment variable NAME.

Rasa reads its auth token, its JWT secret and rasa-x's token (in the --config-endpoint URL) only
from its command line. Written there by compose they would show in `ps`, /proc/<pid>/cmdline
and `docker inspect`; this way the command line holds only their names, and the values exist
only in this process's memory (sys.argv is not the kernel's copy of the command line).

With --config-endpoint, it first waits until rasa-x answers there, saying why not in words that
never hold the token: Rasa itself retries silently for 5 minutes and then prints the whole URL,
token included.
"""

import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
WAIT_SECONDS = 600


def expand(argument: str) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if not os.environ.get(name):
            sys.exit(f"start.py: {name} is not set in this container's environment")
        return os.environ[name]

    return _NAME.sub(value, argument)


def wait_for_config(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # no query: the token is in it
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                print(f"start.py: the runtime config is ready at {where}", flush=True)
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                sys.exit(f"start.py: {where} refused the token ({exc.code}): RASA_X_TOKEN of this "
                         "container differs from rasa-x's")
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = type(getattr(exc, "reason", exc)).__name__
        if time.monotonic() > deadline:
            sys.exit(f"start.py: no runtime config from {where} after {WAIT_SECONDS} s ({reason})")
        print(f"start.py: waiting for {where} ({reason})", flush=True)
        time.sleep(3)


def main() -> None:
    arguments = [expand(a) for a in sys.argv[1:]]
    if "--config-endpoint" in arguments[:-1]:
        wait_for_config(arguments[arguments.index("--config-endpoint") + 1])
    sys.argv = ["rasa", *arguments]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
