"""A Docker engine to talk to: installed from Debian and started when missing (as root).

On a fresh Debian VM `rasax-deploy up` is the whole installation, so it does what an operator
would: `apt-get install docker.io mmdebstrap`, then start `dockerd` (systemd when it runs the
machine, otherwise in the background with its PID in /run/rasax-dockerd.pid).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

START_SCRIPT = Path(__file__).resolve().parent / "start-dockerd.sh"
PACKAGES = {"dockerd": "docker.io", "mmdebstrap": "mmdebstrap"}


class DockerEngineError(RuntimeError):
    pass


def connect(timeout: float = 600):
    """A Docker SDK client of the engine that answers, or DockerEngineError saying why none does.

    The long default suits builds and image transfers; a mere "is it there?" passes a short one.
    """
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # DockerException, or a socket error before it is wrapped
        raise DockerEngineError(f"no Docker engine answers ({exc}); start dockerd and try again") from None


def running_client(timeout: float = 600):
    """connect(), or None when no engine answers: read-only checks then have nothing to look at."""
    try:
        return connect(timeout)
    except DockerEngineError:
        return None


def _answers() -> bool:
    client = running_client(timeout=10)
    if client is None:
        return False
    client.close()
    return True


APT_LOCK_SECONDS = 600


def apt_install(packages: list[str]) -> None:
    """`apt-get install` on Debian, waiting for another apt run's lock rather than failing on it."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    wait = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_SECONDS}"]
    for command in (["apt-get", *wait, "update", "-qq"],
                    ["apt-get", *wait, "install", "-y", "-qq", "--no-install-recommends", *packages]):
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise DockerEngineError(f"{' '.join(command)} failed: {result.stderr.strip()[-1500:]}")


def ensure_running(note: Callable[[str], None]) -> bool:
    """True when this call installed or started the engine (a change to the host)."""
    if _answers():
        note("Docker engine: running")
        return False
    if os.geteuid() != 0:
        raise DockerEngineError("no Docker engine answers on this machine; start it (or run rasax-deploy as root "
                          "to have it installed and started)")
    missing = [package for binary, package in PACKAGES.items() if shutil.which(binary) is None]
    if missing:
        if shutil.which("apt-get") is None:
            raise DockerEngineError(f"Docker is not installed and there is no apt-get: install {', '.join(missing)}")
        note(f"installing {' '.join(missing)} with apt-get (about a minute)")
        apt_install(missing)
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        note("starting docker with systemctl")
        subprocess.run(["systemctl", "enable", "--now", "docker"], capture_output=True)
    else:
        note("starting dockerd (no init system: in the background, PID in /run/rasax-dockerd.pid)")
        result = subprocess.run(["bash", str(START_SCRIPT)], capture_output=True, text=True)
        if result.returncode != 0:
            raise DockerEngineError(result.stderr.strip() or "dockerd did not start")
    if not _answers():
        raise DockerEngineError("the Docker engine was started but does not answer; see /var/log/rasax-dockerd.log")
    note("Docker engine: running")
    return True
