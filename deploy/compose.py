"""From the rendered compose files to a plan of containers — pure, no Docker.

Reads docker-compose.yml and the user's docker-compose.override.yml the way `docker-compose`
does (override merged over the base, ${VAR} from .env, profiles), and turns each active service
into a `ServicePlan`: exactly the settings a container gets, in dependency order, with a hash
that tells the runtime whether a running container is still what the files ask for.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .layout import Layout, parse_env
from .secrets import SECRET_NAMES, fingerprint

# The labels docker-compose itself sets on what it creates (`docker-compose ps/logs/down -p
# PROJECT` find our containers by these), and one of ours.
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"
CONFIG_HASH_LABEL = "com.docker.compose.config-hash"
DEPENDS_ON_LABEL = "org.rasax.depends-on"
# From SIGTERM to SIGKILL for a service that declares no stop_grace_period (compose's own default
# is 10 s): PostgreSQL's checkpoint at shutdown and RabbitMQ's may take longer.
STOP_SECONDS = 20


class ComposeError(ValueError):
    pass


_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
# Lists that docker-compose merges by adding the override's entries; other lists are replaced.
_APPENDED = {"ports", "expose", "volumes", "env_file", "extra_hosts", "dns", "networks", "profiles", "cap_add"}


def interpolate(value, env: dict[str, str]):
    """Compose's variable syntax: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(5)
        op, arg = match.group(3), match.group(4) or ""
        current = env.get(name)
        if op in (":-", "-"):
            if current is None or (op == ":-" and current == ""):
                return interpolate(arg, env)
            return current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise ComposeError(f"{name}: {arg or 'is not set'} (set it in .env)")
            return current
        return current or ""

    return _VAR.sub(substitute, value)


def _normalise_service(service: dict) -> dict:
    """The short and long forms compose accepts, turned into one form each, so merging works."""
    service = dict(service)
    env = service.get("environment")
    if isinstance(env, list):
        service["environment"] = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    deps = service.get("depends_on")
    if isinstance(deps, list):
        service["depends_on"] = {name: {"condition": "service_started"} for name in deps}
    if isinstance(service.get("env_file"), str):
        service["env_file"] = [service["env_file"]]
    if isinstance(service.get("networks"), dict):
        service["networks"] = list(service["networks"])
    return service


def merge(base, override, key: str = ""):
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = merge(base[k], v, k) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(override, list) and key in _APPENDED:
        return base + [item for item in override if item not in base]
    return override


def load(layout: Layout, extra_env: dict[str, str] | None = None, compose_text: str | None = None) -> dict:
    """The merged, interpolated compose model of an installation.

    `compose_text` stands for docker-compose.yml not yet written: `up` plans (and checks the
    plan) from what it is about to render before it changes a file.
    """
    env = parse_env(layout.env_file.read_text()) if layout.env_file.exists() else {}
    env.update(extra_env or {})
    model: dict = {}
    for path in (layout.compose_file, layout.override_file):
        if path == layout.compose_file and compose_text is not None:
            text = compose_text
        elif not path.exists():
            if path == layout.compose_file:
                raise ComposeError(f"{path} does not exist: run `rasax-deploy render --dir {layout.root}`")
            continue
        else:
            text = path.read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ComposeError(f"{path} is not valid YAML: {exc}") from None
        data = interpolate(data, env)
        data["services"] = {n: _normalise_service(s or {}) for n, s in (data.get("services") or {}).items()}
        model = merge(model, data)
    return model


def duration_seconds(text) -> int:
    """A compose duration in whole seconds, rounded up."""
    return math.ceil(duration_ns(text) / 10**9)


def duration_ns(text) -> int:
    if isinstance(text, (int, float)):
        return int(text * 10**9)
    parts = _DURATION.findall(str(text))
    if not parts:
        raise ComposeError(f"not a duration: {text!r}")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


@dataclass
class Mount:
    source: str  # absolute host path (bind) or volume name
    target: str
    kind: str  # "bind" or "volume"
    read_only: bool = False


@dataclass
class Port:
    container: int
    host_port: int | None
    host_ip: str = ""


@dataclass
class ServicePlan:
    name: str
    container: str
    image: str
    command: list[str] | None
    entrypoint: list[str] | None
    environment: dict[str, str]
    mounts: list[Mount]
    ports: list[Port]
    network: str
    healthcheck: dict | None
    restart: str
    depends_on: dict[str, str]
    user: str | None
    # Seconds from SIGTERM to SIGKILL when the container is stopped (compose's stop_grace_period).
    stop_seconds: int = STOP_SECONDS
    labels: dict[str, str] = field(default_factory=dict)

    def config_hash(self) -> str:
        data = asdict(self)
        data.pop("labels")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class Plan:
    project: str
    network: str
    volumes: list[str]
    services: list[ServicePlan]  # in start order
    # Volume → the secrets its data was initialised with (e.g. the database's password): a
    # volume made with other values than today's belongs to an earlier installation.
    volume_secrets: dict[str, list[str]] = field(default_factory=dict)
    volume_fingerprints: dict[str, str] = field(default_factory=dict)

    def service(self, name: str) -> ServicePlan:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def dependencies_of(self, name: str) -> list[ServicePlan]:
        """Everything `name` needs running, directly or not, dependencies first."""
        seen: list[str] = []

        def visit(current: str) -> None:
            for dep in self.service(current).depends_on:
                if dep not in seen:
                    visit(dep)
                    seen.append(dep)

        visit(name)
        return [self.service(dep) for dep in seen]


def _split(value) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _mounts(entries: list, root: Path, project: str, volumes: dict) -> list[Mount]:
    mounts = []
    for entry in entries or []:
        if isinstance(entry, dict):
            source, target = entry.get("source", ""), entry["target"]
            read_only = bool(entry.get("read_only"))
        else:
            pieces = entry.split(":")
            if len(pieces) == 1:
                continue  # anonymous volume: nothing to keep, nothing to plan
            source, target = pieces[0], pieces[1]
            read_only = len(pieces) > 2 and "ro" in pieces[2].split(",")
        if source.startswith((".", "/", "~")):
            mounts.append(Mount(str((root / os.path.expanduser(source)).resolve()), target, "bind", read_only))
        else:
            if source not in volumes:
                raise ComposeError(f"volume {source!r} is used but not declared under `volumes:`")
            mounts.append(Mount(f"{project}_{source}", target, "volume", read_only))
    return mounts


def _ports(entries: list) -> list[Port]:
    ports = []
    for entry in entries or []:
        if isinstance(entry, dict):
            ports.append(Port(int(entry["target"]), int(entry["published"]) if entry.get("published") else None,
                              entry.get("host_ip", "")))
            continue
        pieces = str(entry).split(":")
        container = int(pieces[-1].split("/")[0])
        host = pieces[-2] if len(pieces) >= 2 else ""
        ip = ":".join(pieces[:-2]) if len(pieces) >= 3 else ""
        ports.append(Port(container, int(host) if host else None, ip))
    return ports


def _healthcheck(spec: dict | None) -> dict | None:
    if not spec or spec.get("disable"):
        return None
    test = spec["test"]
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    check = {"test": test}
    for key, docker_key in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in spec:
            check[docker_key] = duration_ns(spec[key])
    if "retries" in spec:
        check["retries"] = int(spec["retries"])
    return check


def start_order(services: dict[str, dict]) -> list[str]:
    """Dependencies first; a cycle or a dependency on an inactive service is an error."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            raise ComposeError("dependency cycle: " + " → ".join(chain + (name,)))
        if name not in services:
            raise ComposeError(f"{chain[-1]} depends on {name}, which is not an active service")
        visiting.add(name)
        for dep in services[name].get("depends_on") or {}:
            visit(dep, chain + (name,))
        visiting.discard(name)
        order.append(name)

    for name in services:  # file order among independent services
        visit(name, ())
    return order


def stop_order(dependencies: dict[str, list[str]]) -> list[str]:
    """The reverse of the start order: whatever depends on a service stops before it.

    Dependencies on services that are not in the mapping (gone, or of another profile) are
    ignored: `down` must stop what there is, not check the files.
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:  # a cycle cannot start; stop it in any order
            return
        visiting.add(name)
        for dep in dependencies.get(name, []):
            if dep in dependencies:
                visit(dep)
        order.append(name)

    for name in dependencies:
        visit(name)
    return order[::-1]


def dependencies(model: dict) -> dict[str, list[str]]:
    """Service → the services it depends on, for every service of the files (every profile)."""
    return {name: list(spec.get("depends_on") or {}) for name, spec in model.get("services", {}).items()}


def file_dependencies(layout: Layout) -> dict[str, list[str]] | None:
    """`dependencies` of an installation's files, or None when they are gone or unreadable."""
    try:
        return dependencies(load(layout))
    except (ComposeError, OSError):
        return None


def active_services(model: dict, profiles: set[str]) -> dict[str, dict]:
    return {
        name: spec
        for name, spec in model.get("services", {}).items()
        if not spec.get("profiles") or profiles & set(spec["profiles"])
    }


def make_plan(model: dict, layout: Layout, project: str, profiles: set[str] | None = None) -> Plan:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", project):
        raise ComposeError(f"project name must be lowercase letters, digits, - and _, got {project!r}")
    services = active_services(model, profiles or set())
    declared_volumes = model.get("volumes") or {}
    networks = list(model.get("networks") or {"default": {}})
    network = f"{project}_{networks[0]}"
    plans = []
    for name in start_order(services):
        spec = services[name]
        if not spec.get("image"):
            raise ComposeError(f"service {name} has no image")
        environment: dict[str, str] = {}
        for env_file in spec.get("env_file") or []:
            path = layout.root / env_file
            if not path.exists():
                raise ComposeError(f"service {name}: env_file {path} does not exist")
            environment.update(parse_env(path.read_text()))
        environment.update({k: "" if v is None else str(v) for k, v in (spec.get("environment") or {}).items()})
        restart = spec.get("restart", "no")
        plans.append(ServicePlan(
            name=name,
            container=f"{project}_{name}_1",
            image=spec["image"],
            command=_split(spec.get("command")),
            entrypoint=_split(spec.get("entrypoint")),
            environment=environment,
            mounts=_mounts(spec.get("volumes"), layout.root, project, declared_volumes),
            ports=_ports(spec.get("ports")),
            network=network,
            healthcheck=_healthcheck(spec.get("healthcheck")),
            restart=restart,
            depends_on={dep: (cond or {}).get("condition", "service_started")
                        for dep, cond in (spec.get("depends_on") or {}).items()},
            user=str(spec["user"]) if spec.get("user") is not None else None,
            stop_seconds=duration_seconds(spec.get("stop_grace_period", STOP_SECONDS)),
        ))
    for service in plans:
        service.labels = {
            PROJECT_LABEL: project,
            SERVICE_LABEL: service.name,
            "com.docker.compose.container-number": "1",
            "com.docker.compose.oneoff": "False",
            WORKING_DIR_LABEL: str(layout.root),
            CONFIG_HASH_LABEL: service.config_hash(),
            # `down` stops dependents first even when the files are gone.
            DEPENDS_ON_LABEL: ",".join(service.depends_on),
        }
    volumes = [f"{project}_{v}" for v in declared_volumes]
    bound = volume_secrets(plans, volumes, layout)
    return Plan(project, network, volumes, plans, bound["names"], bound["fingerprints"])


def volume_secrets(services: list[ServicePlan], volumes: list[str], layout: Layout) -> dict:
    """Per volume, the secrets of .env that the services mounting it get (names and fingerprint)."""
    env = parse_env(layout.env_file.read_text()) if layout.env_file.exists() else {}
    names: dict[str, list[str]] = {}
    fingerprints: dict[str, str] = {}
    for volume in volumes:
        values = {value for s in services if any(m.source == volume for m in s.mounts)
                  for value in s.environment.values()}
        bound = [name for name in SECRET_NAMES if env.get(name) and env[name] in values]
        if bound:
            names[volume] = bound
            fingerprints[volume] = fingerprint(volume, [env[name] for name in bound])
    return {"names": names, "fingerprints": fingerprints}
