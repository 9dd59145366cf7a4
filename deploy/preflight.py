"""Read-only checks `up` makes before it changes anything: a refusal leaves the site as it was.

Each check reads the installation folder or asks Docker, and raises `RefusedError` with what
was expected, what was found and the fix. None of them writes, stops or creates a thing.
"""

from __future__ import annotations

import errno
import socket
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from . import docker_engine, render
from .compose import PROJECT_LABEL, WORKING_DIR_LABEL, Plan
from .install import unsafe_values
from .layout import Layout, read_env
from .secrets import SECRET_NAMES

# Set on each data volume `up` creates: a fingerprint of the secrets its data was set up with.
FINGERPRINT_LABEL = "org.rasax.secrets-fingerprint"


class RefusedError(RuntimeError):
    """An unsafe state: the message says what was expected, what was found and how to fix it."""


def check_env(layout: Layout, project_option: str | None = None) -> None:
    """.env has real secrets, the same as credentials/, and belongs to the project asked for."""
    env = read_env(layout)
    bad = unsafe_values(env)
    if bad:
        files = ", ".join(f"credentials/{name}" for name in bad)
        raise RefusedError(
            f"{layout.env_file}: {', '.join(bad)} missing or a placeholder (expected the generated secret, as in "
            f"{files}). Remove the line(s) and run `rasax-deploy init --dir {layout.root}`: it writes them "
            f"from credentials/ (or generates them when that is missing too)."
        )
    differ = [name for name in SECRET_NAMES if (layout.credentials / name).is_file()
              and env.get(name, "") != (layout.credentials / name).read_text().strip()]
    if differ:
        names = ", ".join(differ)
        files = ", ".join(f"credentials/{name}" for name in differ)
        plural = len(differ) > 1
        raise RefusedError(
            f"{names} in {layout.env_file} {'differ' if plural else 'differs'} from {files} in {layout.root}: "
            f"the services would get .env's value while the database, broker and Redis were set up with the "
            f"other. Nothing was changed. Copy the value of {files} onto the {names} line{'s' if plural else ''} "
            f"of .env (to change a password, change it in the service first, then in both files)."
        )
    project = env.get("COMPOSE_PROJECT_NAME")
    if project and project_option and project != project_option:
        raise RefusedError(
            f"{layout.env_file} belongs to project {project!r}, not {project_option!r}: drop --project-name or "
            f"change COMPOSE_PROJECT_NAME there"
        )


def _published_by(container) -> set[int]:
    ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    return {int(b["HostPort"]) for bindings in ports.values() for b in bindings or [] if b.get("HostPort")}


def _bind_fails(host_ip: str, port: int) -> bool:
    """True when the host cannot give this port to a new listener now (Docker's proxy would fail)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Docker's proxy binds
        try:
            probe.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            # EACCES: a port below 1024 for a non-root user; dockerd (root) may still bind it.
            return exc.errno == errno.EADDRINUSE
    return False


def check_ports(docker_client, plan: Plan) -> None:
    """Every port the plan publishes is free on the host, or already held by that same service."""
    running = docker_client.containers.list()
    # The bind test says something only about the machine the engine runs on.
    local = urlparse(docker_client.api.base_url).hostname in ("localhost", "127.0.0.1", "::1")
    wanted: dict[int, str] = {}
    for service in plan.services:
        for port in service.ports:
            if port.host_port is None:
                continue
            if port.host_port in wanted:
                raise RefusedError(f"port {port.host_port} is asked for twice ({wanted[port.host_port]} and "
                                   f"{service.name}): --http-port and --https-port must differ")
            wanted[port.host_port] = service.name
            holders = [c for c in running if port.host_port in _published_by(c)]
            if any(c.name == service.container for c in holders):
                continue  # ours already: it is handed over when the container is replaced
            if holders:
                holder = holders[0]
                owner = holder.labels.get(PROJECT_LABEL)
                by = f"container {holder.name}" + (f" of project {owner}" if owner else "")
            elif local and _bind_fails(port.host_ip, port.host_port):
                by = "another program on this host"
            else:
                continue
            raise RefusedError(
                f"{service.name} cannot publish port {port.host_port}: it is in use by {by}. Nothing was "
                f"changed, the stack keeps serving as before. Choose a free port (--http-port / --https-port) "
                f"or free that one."
            )


def _created(volume) -> float | None:
    text = volume.attrs.get("CreatedAt") or ""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _from_this_installation(volume, plan: Plan, layout: Layout, state: dict) -> bool:
    wanted = plan.volume_fingerprints.get(volume.name)
    if wanted is None:
        return True  # no secret of ours in its data: nothing to disagree with
    label = (volume.attrs.get("Labels") or {}).get(FINGERPRINT_LABEL)
    if label is not None:
        return label == wanted
    # Made before volumes carried a fingerprint (or by docker-compose): this folder vouches for it
    # when an `up` from here has worked, or when its credentials are older than the volume.
    if state.get("project") == plan.project:
        return True
    created = _created(volume)
    files = [layout.credentials / name for name in plan.volume_secrets.get(volume.name, [])]
    return created is not None and all(f.exists() and f.stat().st_mtime <= created for f in files)


def check_volumes(docker_client, plan: Plan, layout: Layout) -> None:
    """Data volumes of the project that another installation (other secrets) set up are refused.

    The usual way here: the folder was deleted and `up` ran again. Same project name, so the
    same volume names, but new credentials: the database would refuse every login.
    """
    existing = {v.name: v for v in docker_client.volumes.list(filters={"label": f"{PROJECT_LABEL}={plan.project}"})}
    state = render.load_state(layout)
    foreign = [existing[name] for name in plan.volumes
               if name in existing and not _from_this_installation(existing[name], plan, layout, state)]
    if not foreign:
        return
    secrets = sorted({s for v in foreign for s in plan.volume_secrets.get(v.name, [])})
    raise _earlier_installation(docker_client, foreign, layout, plan.project,
                                f"they were set up with other {', '.join(secrets)} than {layout.credentials} "
                                f"holds, so the services could not log in")


def check_new_folder(layout: Layout, project: str, docker_client=None) -> None:
    """`init` of a folder without secrets yet, beside data volumes of the same project: refused
    before a secret is generated, since new secrets could never open that data.

    Without a Docker engine answering there is nothing to look at (`up` checks again).
    """
    if layout.env_file.exists() or any((layout.credentials / name).exists() for name in SECRET_NAMES):
        return
    if docker_client is None:
        docker_client = docker_engine.running_client(timeout=10)
        if docker_client is None:
            return
    volumes = docker_client.volumes.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    if volumes:
        _check_not_installed_elsewhere(docker_client, layout, project)
        raise _earlier_installation(docker_client, sorted(volumes, key=lambda v: v.name), layout, project,
                                    f"{layout.root} has no credentials yet, and new ones could not open that data")


def _check_not_installed_elsewhere(docker_client, layout: Layout, project: str) -> None:
    """The project's containers say which folder they were made from: when that installation still
    exists, this is a second installation under a name already taken, not a lost folder."""
    containers = docker_client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    folders = {c.labels.get(WORKING_DIR_LABEL) for c in containers} - {None, str(layout.root)}
    elsewhere = sorted(f for f in folders if (Layout(Path(f)).env_file).exists())
    if elsewhere:
        raise RefusedError(
            f"project {project!r} is the installation in {elsewhere[0]} (its containers and data volumes). "
            f"Nothing was changed. To install a second stack in {layout.root}, give it a name of its own: "
            f"`--project-name NAME`; to work on that one, use `--dir {elsewhere[0]}`"
        )


def _earlier_installation(docker_client, volumes, layout: Layout, project: str, why: str) -> RefusedError:
    """What the volumes are and the two ways out: that installation's secrets back, or its data gone."""
    names = " ".join(v.name for v in volumes)
    created = min((v.attrs.get("CreatedAt") or "")[:19].replace("T", " ") for v in volumes)
    containers = docker_client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    stop_first = f"`rasax-deploy down --dir {layout.root} -p {project}`, then " if containers else ""
    return RefusedError(
        f"the data volumes {names} (created {created} UTC) belong to an earlier installation of project "
        f"{project!r}: {why}. Nothing was changed. Either put that installation's credentials/ and .env back "
        f"into {layout.root}, or delete its data for good: {stop_first}`docker volume rm {names}`"
    )
