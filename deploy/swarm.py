"""`swarm render|deploy`: the installation as a Docker Swarm stack, from the same sources as compose.

One source, several targets (as deploy/kubernetes.py): every service's image, command, health
check and environment is read from the compose file `render` makes, every value from the
installation's `.env`, `credentials/` and `auth/` — nothing is generated here. What a stack
needs that compose does not say is decided here:

- each secret is a swarm secret made from credentials/<NAME> (its name carries a fingerprint of
  the value: swarm secrets are immutable, so a changed value is a new secret and rolls its
  users). The project's services read it from /run/secrets through NAME_FILE
  (services/common/config.py); the images that take a secret under their own variable
  (PostgreSQL, RabbitMQ, Redis, the Rasa servers) get it exported from the file by a one-line
  shell prelude before their own entrypoint, and a shell health check gets the same prelude.
  The key pair of auth/ is two more secrets, readable by uid 1001 only;
- the nginx config (and the TLS certificate) are swarm configs, named by their content's hash,
  so a changed config rolls nginx;
- swarm ignores `depends_on`: the migrator is a one-shot service (`rasax-deploy migrate`,
  restarted until it succeeds), and the event service and rasa-x wait in their own entrypoints
  until the schema is at head (services/db_migration wait_for_schema);
- PostgreSQL, RabbitMQ and Redis run once, on the node labelled `rasax-data=true`, with their
  named volumes there, and are updated stop-first (two servers on one data folder corrupt it);
  everything else rolls start-first, one task at a time, and rolls back when a new task fails
  its health check;
- this machine's kernel has no IPVS, so swarm's virtual IPs and routing mesh do not work: every
  service resolves to its tasks' addresses (`endpoint_mode: dnsrr`, which nginx's per-request
  resolver and the clients' reconnects handle), and nginx runs on every node with its ports
  published on the node itself (`mode: host`): any node's address serves the UI.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services import __version__

from . import compose, kubernetes, render
from . import preflight as checks
from .docker_engine import DockerEngineError, connect
from .files import Outcome, ensure_dir, write_if_changed
from .images import IMAGES_DIR, STACK_IMAGES
from .kubernetes import MIGRATOR, SERVERS
from .layout import Layout, read_env
from .rasa_images import image_tags
from .schema import compose_errors, find_compose_schema
from .secrets import PRIVATE_KEY, PUBLIC_KEY, fingerprint, read_secrets

STACK_FILE = "stack.yml"
NGINX_FILE = "rasax.conf"
# Compose file format 3.8: the newest `docker stack deploy` reads (rollback_config, configs,
# secrets with uid/mode, max_replicas_per_node).
FORMAT = "3.8"
NETWORK = "rasax"
# The node label that places the stateful servers (and so their volumes).
DATA_LABEL = "rasax-data"
STATEFUL = tuple(SERVERS)  # db, rabbit, redis
# What runs as several replicas here; nginx runs on every node instead (`mode: global`).
SCALABLE = tuple(name for name in kubernetes.SCALABLE if name != "nginx")
SECRETS_DIR = "/run/secrets"
# Seconds between two tasks of a rolling update: more than nginx's DNS cache (valid=10s in
# deploy/templates/nginx), so nginx knows the new task before the next old one stops.
UPDATE_DELAY = "15s"
# How long a new task is watched after it is running before the update goes on.
UPDATE_MONITOR = "20s"


# After nginx's resolver settings (http level): a task that stopped keeps its address in nginx's
# DNS cache (valid=10s) while nothing answers there on the overlay network any more, so a connect
# to it hangs instead of failing. Giving up after 2 s lets proxy_next_upstream try the next task.
NGINX_SWARM = ("\n# Swarm (deploy/swarm.py): a stopped task's address stays in the DNS cache for up to 10 s and\n"
               "# nothing answers there: fail over to the next task instead of waiting for it.\n"
               "proxy_connect_timeout 2s;\n")


def nginx_config(text: str) -> str:
    """The stack's nginx config with NGINX_SWARM after its resolver settings."""
    anchor = re.search(r"^resolver_timeout [^\n]*\n", text, re.M)
    if anchor is None:
        raise ValueError("the nginx template has no `resolver_timeout` line to put the swarm settings after")
    return text[:anchor.end()] + NGINX_SWARM + text[anchor.end():]


class SwarmError(DockerEngineError):
    """`docker stack deploy` failed or the stack did not converge: the message says which service."""


@dataclass(frozen=True)
class SwarmOptions:
    stack: str = "rasax"
    replicas: dict = field(default_factory=dict)
    rasa_services: bool | None = None  # None: the installation's choice (render --rasa/--no-rasa)

    def __post_init__(self):
        # The stack's name prefixes every service, secret and config: Docker's name rules.
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,30}", self.stack):
            raise ValueError(f"stack name {self.stack!r}: lowercase letters, digits, '-' and '_', at most 31")
        for name in self.replicas:
            if name not in SCALABLE:
                raise ValueError(f"--replicas {name}=N: one of {', '.join(SCALABLE)} (nginx runs on every node)")


def dockerfile(folder: str) -> dict:
    """ENTRYPOINT, CMD and USER of one of the stack's images, from its Dockerfile (deploy/images):
    a stack that sets `entrypoint` replaces ENTRYPOINT and CMD, so the prelude runs them itself,
    and a secret is given to the user the image runs as."""
    found = {"ENTRYPOINT": [], "CMD": [], "USER": "root"}
    for line in (IMAGES_DIR / folder / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in found:
            found[word] = rest.strip() if word == "USER" else json.loads(rest)
    return found


def exports(variables: dict[str, str]) -> str:
    """`export VAR="$(cat /run/secrets/SECRET)"; ` for each variable a secret file fills."""
    return "".join(f'export {name}="$(cat {SECRETS_DIR}/{secret})"; ' for name, secret in variables.items())


def escape(value):
    """`docker stack deploy` interpolates `$` from the deploying shell: every `$` written is literal."""
    if isinstance(value, dict):
        return {k: escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape(v) for v in value]
    return value.replace("$", "$$") if isinstance(value, str) else value


class Stack:
    """Builds the stack file of one installation; `files()` renders it with its nginx config."""

    def __init__(self, layout: Layout, options: SwarmOptions, output: Path | None = None):
        self.layout = layout
        self.options = options
        self.output = output or layout.root / "swarm"
        checks.check_env(layout)  # real secrets, the same in .env and credentials/
        self.env = read_env(layout)
        installed = render.load_options(layout)
        self.installed = installed.merged(single_container=False, rasa_services=options.rasa_services)
        self.rendered = render.plan(self.installed)
        self.nginx_conf = nginx_config(self.rendered[render.NGINX_CONF])
        model = yaml.safe_load(self.rendered["docker-compose.yml"])
        self.services = {name: spec for name, spec in model["services"].items() if not spec.get("profiles")}
        self.volumes = sorted(model.get("volumes") or {})
        self.project_image = self.services["rasa-x"]["image"]
        tags = {**STACK_IMAGES, **image_tags(self.installed.rasa_version)}
        self.image_folders = {tag: folder for folder, tag in tags.items()}
        self.secret_values = read_secrets(layout.credentials)
        self.secrets: dict[str, dict] = {}  # stack key → top-level secret
        self.configs: dict[str, dict] = {}

    # -- secrets and configs --

    def secret(self, key: str, path: Path, content: str) -> str:
        """A top-level secret from an installation file; its name changes with its value."""
        name = f"{self.options.stack}_{key}_{fingerprint(f'swarm:{key}', [content])[:12]}"
        self.secrets[key] = {"name": name, "file": str(path)}
        return key

    def config(self, key: str, path: str, content: str) -> str:
        name = f"{self.options.stack}_{key}_{hashlib.sha256(content.encode()).hexdigest()[:12]}"
        self.configs[key] = {"name": name, "file": path}
        return key

    def secret_mount(self, key: str, target: str | None = None, uid: str | None = None) -> dict:
        """Readable by the image's numeric user only; an image running as a named user (whose
        uid Debian chose) gets it readable in its container, where nothing else runs."""
        if uid and uid.isdigit():
            return {"source": key, "target": target or key, "uid": uid, "gid": "0", "mode": 0o400}
        return {"source": key, "target": target or key, "mode": 0o444}

    def image(self, image: str) -> dict:
        if image not in self.image_folders:
            raise ValueError(f"{image}: not an image of the stack (deploy/images), its entrypoint is unknown")
        return dockerfile(self.image_folders[image])

    # -- services --

    def service(self, name: str, spec: dict) -> dict:
        project = spec["image"] == self.project_image
        uid = self.image(spec["image"])["USER"]
        service = {"image": spec["image"], "networks": [NETWORK]}
        environment, exported, secrets = {}, {}, set()
        for variable in kubernetes.environment(spec, self.env):
            if "secret" not in variable:
                environment[variable["name"]] = variable["value"]
                continue
            secret = variable["secret"]
            secrets.add(secret)
            self.secret(secret, self.layout.credentials / secret, self.secret_values[secret])
            if project:  # services/common/config.py reads NAME_FILE
                environment[f"{variable['name']}_FILE"] = f"{SECRETS_DIR}/{secret}"
            else:
                exported[variable["name"]] = secret
        mounts = [self.secret_mount(s, uid=uid) for s in sorted(secrets)]
        if project:
            for key, variable in ((PRIVATE_KEY, "JWT_PRIVATE_KEY_PATH"), (PUBLIC_KEY, "JWT_PUBLIC_KEY_PATH")):
                if variable in environment:
                    path = self.layout.auth / key
                    self.secret(key, path, path.read_text())
                    mounts.append(self.secret_mount(key, uid=uid))
                    environment[variable] = f"{SECRETS_DIR}/{key}"
        if environment:
            service["environment"] = environment
        command = compose.interpolate(spec.get("command"), {}) if "command" in spec else None
        if exported:
            entrypoint = compose.interpolate(spec["entrypoint"], {}) if "entrypoint" in spec else None
            image = self.image(spec["image"])
            start = (entrypoint or image["ENTRYPOINT"]) + (command or ([] if entrypoint else image["CMD"]))
            service["entrypoint"] = ["sh", "-c", exports(exported) + 'exec "$@"', "sh", *start]
        else:
            if "entrypoint" in spec:
                service["entrypoint"] = compose.interpolate(spec["entrypoint"], {})
            if command:
                service["command"] = command
        if mounts:
            service["secrets"] = mounts
        if "healthcheck" in spec:
            service["healthcheck"] = self.healthcheck(spec["healthcheck"], exported)
        volumes = [v for v in spec.get("volumes") or [] if v.split(":")[0] in self.volumes]
        if name == "rasa-x":
            volumes.append("models:/app/models")  # on each node its own: see docs/design.md
        if volumes:
            service["volumes"] = volumes
        if "expose" in spec:
            service["expose"] = spec["expose"]
        if "stop_grace_period" in spec:
            service["stop_grace_period"] = spec["stop_grace_period"]
        service["deploy"] = self.deploy(name)
        return service

    def healthcheck(self, check: dict, exported: dict[str, str]) -> dict:
        test = compose.interpolate(check["test"], {})
        if test[0] == "CMD-SHELL" and exported:
            test = ["CMD-SHELL", exports(exported) + test[1]]
        return {**check, "test": test}

    def deploy(self, name: str) -> dict:
        deploy = {"endpoint_mode": "dnsrr", "restart_policy": {"condition": "any", "delay": "5s"}}
        if name in STATEFUL:
            return {**deploy, "replicas": 1, "placement": {"constraints": [f"node.labels.{DATA_LABEL} == true"]},
                    "update_config": {"parallelism": 1, "order": "stop-first", "failure_action": "rollback"}}
        rolling = {"parallelism": 1, "delay": UPDATE_DELAY, "monitor": UPDATE_MONITOR, "max_failure_ratio": 0}
        if name == "nginx":
            # Its ports are the node's own: a second nginx on a node could not bind them, so the
            # old one stops first (nginx starts in a second; the other nodes serve meanwhile).
            return {**deploy, "mode": "global",
                    "update_config": {**rolling, "order": "stop-first", "failure_action": "rollback"},
                    "rollback_config": {"parallelism": 1, "order": "stop-first"}}
        return {**deploy, "replicas": self.options.replicas.get(name, 1),
                "update_config": {**rolling, "order": "start-first", "failure_action": "rollback"},
                "rollback_config": {"parallelism": 1, "order": "start-first", "monitor": UPDATE_MONITOR}}

    def migrator(self) -> dict:
        """`rasax-deploy migrate` once, restarted until it succeeds; the others wait for its schema."""
        service = self.service(MIGRATOR, self.services[MIGRATOR])
        service["command"] = ["rasax-deploy", "migrate", "--json"]
        service["environment"].pop("SELF_PORT", None)
        service["healthcheck"] = {"disable": True}
        service["deploy"] = {"endpoint_mode": "dnsrr", "replicas": 1,
                             "restart_policy": {"condition": "on-failure", "delay": "5s"}}
        return service

    def nginx(self, service: dict) -> dict:
        spec = self.services["nginx"]
        configs = [{"source": self.config("nginx_conf", str(self.output / NGINX_FILE), self.nginx_conf),
                    "target": f"/etc/nginx/conf.d/{NGINX_FILE}"}]
        # A host port binds every address of the node: swarm's long syntax has no host IP.
        ports = [{"target": int(target), "published": render.parse_published(published)[1], "protocol": "tcp",
                  "mode": "host"} for published, target in (p.rsplit(":", 1) for p in spec["ports"])]
        service.update(ports=ports, configs=configs)
        service.pop("volumes", None)
        if self.installed.tls:
            cert = self.layout.certs / render.CERT_NAME
            key = self.layout.certs / render.KEY_NAME
            configs.append({"source": self.config("tls_cert", str(cert), cert.read_text()),
                            "target": f"{render.CERT_DIR}/{render.CERT_NAME}"})
            self.secret("tls_key", key, key.read_text())
            service["secrets"] = [self.secret_mount("tls_key", f"{render.CERT_DIR}/{render.KEY_NAME}")]
        return service

    def actions(self, service: dict) -> dict:
        """The installation's actions/ package, a config per file (swarm has no bind mount across nodes)."""
        configs = []
        root = self.layout.actions
        for number, path in enumerate(sorted(p for p in root.rglob("*") if p.is_file()
                                             and not any(s in str(p) for s in kubernetes.ACTIONS_SKIPPED))):
            relative = path.relative_to(root).as_posix()
            key = self.config(f"actions_{number}", str(path), path.read_text())
            configs.append({"source": key, "target": f"/app/actions/{relative}", "mode": 0o444})
        service.pop("volumes", None)
        service["configs"] = configs
        return service

    # -- everything --

    def build(self) -> dict:
        services = {}
        for name, spec in self.services.items():
            if name == MIGRATOR:
                services[name] = self.migrator()
                continue
            service = self.service(name, spec)
            if name == "nginx":
                service = self.nginx(service)
            elif name == "app":
                service = self.actions(service)
            services[name] = service
        volumes = {name: {} for name in self.volumes}
        if "rasa-x" in services:
            volumes["models"] = {}
        return {
            "version": FORMAT,
            "services": services,
            "networks": {NETWORK: {"driver": "overlay", "attachable": True}},
            "volumes": volumes,
            "secrets": dict(sorted(self.secrets.items())),
            "configs": dict(sorted(self.configs.items())),
        }

    def files(self) -> dict[str, str]:
        """File name → content: the stack file (its paths relative to the installation) and nginx's config."""
        stack = escape(self.build())
        header = (f"# Generated by `rasax-deploy swarm render` (rasax-deploy {__version__}) from .env, credentials/\n"
                  f"# and auth/: rewritten on every render. Deploy it with `rasax-deploy swarm deploy`\n"
                  f"# (or `docker stack deploy --resolve-image never -c {STACK_FILE} {self.options.stack}`).\n")
        return {STACK_FILE: header + yaml.safe_dump(stack, sort_keys=False, width=120),
                NGINX_FILE: self.nginx_conf}


def plan(layout: Layout, options: SwarmOptions, output: Path | None = None) -> dict[str, str]:
    return Stack(layout, options, output).files()


def stack_errors(text: str) -> list[str]:
    """The stack file against the Compose Specification the repository ships (deploy/compose-spec)."""
    return compose_errors(text, find_compose_schema())


def apply(layout: Layout, options: SwarmOptions, output: Path | None = None) -> list[Outcome]:
    """Write the stack to `output` (default: swarm/ in the installation). It names the secret files
    by path and holds no secret; the files it names stay where they are."""
    output = output or layout.root / "swarm"
    files = plan(layout, options, output)
    errors = stack_errors(files[STACK_FILE])
    if errors:  # a bug of this module: refuse before anything is written
        raise ValueError("the rendered stack file breaks the Compose specification:\n  " + "\n  ".join(errors))
    ensure_dir(output, 0o700)
    return [write_if_changed(output / name, text, 0o600) for name, text in files.items()]


# ---- deploying ------------------------------------------------------------------------------

def data_node(client, wanted: str | None = None) -> str:
    """The node labelled DATA_LABEL (the stateful servers' volumes are there), labelling `wanted`
    (default: the node this engine runs) when none is; another node than the labelled one is refused:
    moving the label would start empty servers."""
    labelled = [n for n in client.nodes.list() if n.attrs["Spec"].get("Labels", {}).get(DATA_LABEL) == "true"]
    names = {n.attrs["Description"]["Hostname"]: n for n in client.nodes.list()}
    if labelled:
        node = labelled[0]
        hostname = node.attrs["Description"]["Hostname"]
        if wanted and wanted not in (hostname, node.id):
            raise SwarmError(f"the stateful servers' data is on node {hostname} (label {DATA_LABEL}=true), "
                             f"not {wanted}: move it with a backup and restore, then relabel")
        return hostname
    if wanted:
        node = names.get(wanted) or next((n for n in names.values() if n.id == wanted), None)
        if node is None:
            raise SwarmError(f"--data-node {wanted}: no such node in this swarm ({', '.join(sorted(names))})")
    else:
        node = client.nodes.get(client.info()["Swarm"]["NodeID"])
    spec = node.attrs["Spec"]
    spec["Labels"] = {**spec.get("Labels", {}), DATA_LABEL: "true"}
    node.update(spec)
    return node.attrs["Description"]["Hostname"]


def stack_deploy(stack_file: Path, stack: str) -> None:
    """`docker stack deploy` of the file, with the images each node has (no registry: --resolve-image
    never), removing services the file no longer has."""
    command = ["docker", "stack", "deploy", "--prune", "--resolve-image", "never", "--compose-file",
               str(stack_file), stack]
    result = subprocess.run(command, capture_output=True, text=True, cwd=stack_file.parent)
    if result.returncode != 0:
        raise SwarmError(f"{shlex.join(command)} failed: {(result.stderr or result.stdout).strip()}")


def service_states(client, stack: str) -> dict[str, dict]:
    """Service → {"wanted", "running", "complete", "error", "update"} of the stack's services now."""
    states = {}
    for service in client.services.list(filters={"label": f"com.docker.stack.namespace={stack}"}):
        name = service.name.removeprefix(f"{stack}_")
        mode = service.attrs["Spec"]["Mode"]
        tasks = service.tasks(filters={"desired-state": "running"}) + service.tasks(filters={"desired-state": "shutdown"})
        current = [t for t in tasks if t["DesiredState"] == "running"]
        if "Global" in mode:
            wanted = len(current)
        else:
            wanted = mode.get("Replicated", {}).get("Replicas", 1)
        errors = [t["Status"].get("Err") for t in sorted(tasks, key=lambda t: t["UpdatedAt"]) if t["Status"].get("Err")]
        states[name] = {
            "wanted": wanted,
            "running": sum(t["Status"]["State"] == "running" for t in current),
            "complete": sum(t["Status"]["State"] == "complete" for t in tasks),
            "error": errors[-1] if errors else None,
            "update": (service.attrs.get("UpdateStatus") or {}).get("State"),
        }
    return states


def converged(states: dict[str, dict]) -> bool:
    """Every service runs its replicas, and the migrator has completed once."""
    if not states:
        return False
    return all((s["complete"] >= 1) if name == MIGRATOR else (s["running"] >= s["wanted"] > 0)
               and s["update"] not in ("updating", "rollback_started")
               for name, s in states.items())


def wait(client, stack: str, timeout: float, progress=lambda states: None) -> dict[str, dict]:
    """Until the stack has converged; SwarmError naming what is not running (and its last error)."""
    deadline = time.monotonic() + timeout
    while True:
        states = service_states(client, stack)
        progress(states)
        if converged(states):
            return states
        if time.monotonic() > deadline:
            behind = [f"{name} {s['running']}/{s['wanted']}" + (f" ({s['error']})" if s["error"] else "")
                      for name, s in states.items() if name != MIGRATOR and s["running"] < s["wanted"]]
            if MIGRATOR in states and not states[MIGRATOR]["complete"]:
                behind.insert(0, f"{MIGRATOR} not complete ({states[MIGRATOR]['error'] or 'running'})")
            raise SwarmError(f"stack {stack} not running after {timeout:.0f} s: " + ", ".join(behind or ["no services"]))
        time.sleep(3)


def deploy(layout: Layout, options: SwarmOptions, output: Path | None = None, wanted_data_node: str | None = None,
           timeout: float = 600, progress=lambda states: None) -> tuple[list[Outcome], str, dict[str, dict]]:
    """Render, label the data node, `docker stack deploy`, wait until every service runs. The engine
    is the one DOCKER_HOST names (a manager of the swarm)."""
    client = connect()
    swarm = client.info().get("Swarm", {})
    if not swarm.get("ControlAvailable"):
        state = swarm.get("LocalNodeState", "inactive")
        raise SwarmError(f"this Docker engine is no swarm manager (swarm: {state}): run it on a manager, "
                         f"or `docker swarm init` first")
    outcomes = apply(layout, options, output)
    node = data_node(client, wanted_data_node)
    stack_deploy((output or layout.root / "swarm") / STACK_FILE, options.stack)
    return outcomes, node, wait(client, options.stack, timeout, progress)
