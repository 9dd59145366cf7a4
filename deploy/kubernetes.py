"""`k8s render`: Kubernetes manifests of an installation, from the same sources as its compose stack.

One source, several targets: every service's image, command, health check, start order and
environment is read from the compose file `render` makes (deploy/templates/compose), and every
value from the installation's `.env`, `credentials/` and `auth/` — nothing is generated here, so
the manifests hold the secrets the data was set up with. What compose has no words for is decided
here, in Python; the templates in deploy/templates/kubernetes only lay the objects out:

- each compose health check becomes the same command as an exec probe, with compose's timing:
  a startup probe allowing compose's whole wait (retries and start period), a liveness probe
  restarting after compose's `retries` failures (its "unhealthy"), a readiness probe taking the
  pod out of its Service after three;
- `depends_on: service_healthy` becomes an init container: the schema gate (`rasax-deploy
  migration-status` until the schema is at head) for db-migration, otherwise a wait until the
  dependency's Service accepts connections, which it does only once a pod of it is ready;
- the migrator is a Job (`rasax-deploy migrate`) named after the version, so an upgrade migrates
  once; PostgreSQL, RabbitMQ and Redis are StatefulSets with claims, unless .env points the
  services at a server elsewhere (DB_HOST, RABBITMQ_HOST, REDIS_HOST other than the service);
- the secrets go to Secrets, referenced by name from each container's environment (the same
  variables compose gives it); pods carry checksums of the ConfigMaps and Secrets they use, so a
  changed value rolls them;
- nginx serves plain HTTP behind an Ingress, which terminates TLS when the installation has it.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from services import __version__

from . import compose, render
from . import preflight as checks
from .files import Outcome, ensure_dir, write_if_changed
from .layout import Layout, read_env, templates
from .secrets import PRIVATE_KEY, PUBLIC_KEY, SECRET_NAMES, SERVICE_UID, fingerprint, read_secrets

CREDENTIALS_SECRET, AUTH_SECRET, TLS_SECRET = "rasax-credentials", "rasax-auth", "rasax-tls"
NGINX_CONFIGMAP, ACTIONS_CONFIGMAP = "rasax-nginx", "rasax-actions"
MIGRATOR = "db-migration"
# What may run as several replicas (the stateful servers may not: one pod each).
SCALABLE = ("rasa-x", "event-service", "rasa-production", "rasa-worker", "app", "nginx")
# The servers the stack can bring, and the .env variables that say where the services find them.
SERVERS = {"db": ("DB_HOST", "DB_PORT"), "rabbit": ("RABBITMQ_HOST", "RABBITMQ_PORT"),
           "redis": ("REDIS_HOST", "REDIS_PORT")}
# The port each service listens on inside its container (compose needs no word for it), and its name.
PORTS = {"db": 5432, "rabbit": 5672, "redis": 6379, "rasa-x": 5002, "event-service": 5673,
         "rasa-production": 5005, "rasa-worker": 5005, "app": 5055, "nginx": 8080}
PORT_NAMES = {"db": "postgres", "rabbit": "amqp", "redis": "redis"}
# A claim per stateful server: the user its image runs as owns it (an init container sees to
# that: a fresh volume belongs to root), and how large it is by default.
DATA = {"db": ("postgres", "10Gi"), "rabbit": ("rabbitmq", "8Gi"), "redis": ("redis", "1Gi")}
MODELS_SIZE = "10Gi"
# Requests and limits for a small cluster; patch them (kustomize) for a large one.
RESOURCES = {
    "db": ("250m", "256Mi", "1Gi"), "rabbit": ("100m", "256Mi", "1Gi"), "redis": ("50m", "64Mi", "256Mi"),
    MIGRATOR: ("100m", "128Mi", "512Mi"), "event-service": ("200m", "256Mi", "1Gi"),
    "rasa-x": ("250m", "512Mi", "2Gi"), "rasa-production": ("500m", "1Gi", "4Gi"),
    "rasa-worker": ("500m", "2Gi", "8Gi"), "app": ("100m", "256Mi", "1Gi"), "nginx": ("50m", "64Mi", "256Mi"),
}
# Seconds between two attempts of an init container's wait.
WAIT_SECONDS = 3
# Waits until each HOST:PORT argument accepts a TCP connection (a Service does once a pod is ready).
WAIT_FOR_PORTS = (
    "import socket, sys, time\n"
    "for target in sys.argv[1:]:\n"
    "    host, port = target.rsplit(':', 1)\n"
    "    while True:\n"
    "        try:\n"
    "            socket.create_connection((host, int(port)), timeout=3).close()\n"
    "            break\n"
    "        except OSError as exc:\n"
    f"            print(f'waiting for {{target}}: {{exc}}', flush=True)\n"
    f"            time.sleep({WAIT_SECONDS})\n"
)
# ConfigMap keys: letters, digits, - _ . (a file in a subfolder is mapped back to its path).
CONFIGMAP_KEY = re.compile(r"[^-._a-zA-Z0-9]")
CONFIGMAP_LIMIT = 1024 * 1024
ACTIONS_SKIPPED = ("__pycache__", ".pyc")


@dataclass(frozen=True)
class KubernetesOptions:
    namespace: str = "rasax"
    replicas: dict = field(default_factory=dict)
    host: str | None = None  # the Ingress host; by default the TLS certificate's name, else any
    ingress_class: str | None = None
    storage_class: str | None = None
    registry: str | None = None  # prefix of every image, e.g. registry.example.com/rasax
    cluster_domain: str = "cluster.local"

    def __post_init__(self):
        # Every object lives in it, and nginx's upstreams are named with it.
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", self.namespace):
            raise ValueError(f"namespace {self.namespace!r}: lowercase letters, digits and '-', at most 63")


def parse_replicas(values: list[str] | tuple[str, ...]) -> dict[str, int]:
    """`rasa-x=2` → {"rasa-x": 2}; an unknown or stateful service and a bad count are refused."""
    replicas = {}
    for value in values:
        name, _, count = value.partition("=")
        if name not in SCALABLE:
            raise ValueError(f"{value!r}: SERVICE=N with SERVICE one of {', '.join(SCALABLE)}")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"{value!r}: N must be a whole number of at least 1")
        replicas[name] = int(count)
    return replicas


# ---- the containers -------------------------------------------------------------------------

def probe(healthcheck: dict, failures: int) -> dict:
    """A compose health check as a Kubernetes exec probe with its period and timeout."""
    test = compose.interpolate(healthcheck["test"], {})  # `$$` is compose's escape of `$`
    command = list(test[1:]) if test[0] == "CMD" else ["sh", "-c", test[1]]
    return {"exec": {"command": command},
            "periodSeconds": _seconds(healthcheck["interval"]),
            "timeoutSeconds": _seconds(healthcheck["timeout"]),
            "failureThreshold": failures}


def probes(healthcheck: dict) -> dict:
    """startup: compose's whole wait; liveness: compose's `unhealthy`; readiness: out after 3."""
    retries = int(healthcheck["retries"])
    start = math.ceil(compose.duration_ns(healthcheck.get("start_period", "0s")) / 10**9 / _seconds(healthcheck["interval"]))
    return {"startupProbe": probe(healthcheck, retries + start), "livenessProbe": probe(healthcheck, retries),
            "readinessProbe": probe(healthcheck, 3)}


def _seconds(duration) -> int:
    return max(1, compose.duration_seconds(duration))


def environment(spec: dict, env: dict[str, str]) -> list[dict]:
    """The container's variables as compose gives them: a secret by reference to its Secret, any
    other value as .env makes it."""
    variables = []
    for name, raw in (spec.get("environment") or {}).items():
        match = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", str(raw))
        if match and match.group(1) in SECRET_NAMES:
            variables.append({"name": name, "secret": match.group(1)})
        else:
            variables.append({"name": name, "value": str(compose.interpolate(raw, env))})
    return variables


def resources(service: str) -> dict:
    cpu, memory, limit = RESOURCES[service]
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit}}


def init_container(name: str, image: str, command: list[str], args: list[str] | None = None, env: list[dict] = (),
                   mounts: list[dict] = (), sized_like: str = MIGRATOR, security: dict | None = None) -> dict:
    """A container that runs to completion before the pod's own (the shape `container()` makes)."""
    return {"name": name, "image": image, "command": command, "args": args, "env": list(env), "ports": [],
            "probes": {}, "mounts": list(mounts), "resources": resources(sized_like), "security": security}


@dataclass
class Workload:
    """One Deployment, StatefulSet or Job: its pod and what the pod refers to."""

    name: str
    kind: str
    containers: list[dict]
    init_containers: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)
    replicas: int = 1
    port: int | None = None
    security: dict = field(default_factory=dict)
    # From SIGTERM to SIGKILL: compose's stop_grace_period; None keeps Kubernetes' 30 s.
    stop_seconds: int | None = None
    annotations: dict = field(default_factory=dict)
    configmaps: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


class Manifests:
    """Builds every object of one installation; `files()` renders them."""

    def __init__(self, layout: Layout, options: KubernetesOptions):
        self.layout = layout
        self.options = options
        checks.check_env(layout)  # real secrets, the same in .env and credentials/
        self.env = read_env(layout)
        self.secret_values = read_secrets(layout.credentials)
        # The installation's own choices (Rasa in the stack or not, TLS, RASA_VERSION), as one
        # set of services: a cluster runs the three project services apart, nginx in plain HTTP.
        self.installed = render.load_options(layout)
        compose_text = render.plan(self.installed.merged(single_container=False, tls=False))["docker-compose.yml"]
        model = yaml.safe_load(compose_text)
        self.services, self.named_volumes = model["services"], set(model.get("volumes") or {})
        self.external = {name for name, (host, _) in SERVERS.items() if self.env.get(host, name) != name}
        self.configmaps: dict[str, dict] = {}
        self.secrets: dict[str, dict] = {}

    # -- addresses --

    def address(self, service: str) -> str:
        """HOST:PORT where a service is reached: its Service, or the server .env names."""
        if service in SERVERS:
            host, port = SERVERS[service]
            return f"{self.env.get(host, service)}:{self.env.get(port) or PORTS[service]}"
        return f"{service}:{PORTS[service]}"

    def image(self, image: str) -> str:
        return f"{self.options.registry.rstrip('/')}/{image}" if self.options.registry else image

    # -- containers --

    def container(self, name: str, spec: dict, replace_args: list[str] | None = None) -> dict:
        container = {
            "name": name,
            "image": self.image(spec["image"]),
            "command": compose.interpolate(spec.get("entrypoint"), {}),
            "args": replace_args or compose.interpolate(spec.get("command"), {}),
            "env": environment(spec, self.env),
            "ports": [{"name": PORT_NAMES.get(name, "http"), "port": PORTS[name]}] if name in PORTS else [],
            "probes": probes(spec["healthcheck"]) if "healthcheck" in spec and not replace_args else {},
            "resources": resources(name),
            "mounts": [],
        }
        return container

    def gates(self, name: str, spec: dict, image: str, env: list[dict]) -> list[dict]:
        """Init containers for compose's `depends_on: service_healthy`."""
        healthy = [dep for dep, condition in (spec.get("depends_on") or {}).items()
                   if condition.get("condition") == "service_healthy"]
        gates = []
        if MIGRATOR in healthy:
            database = [v for v in env if v["name"].startswith("DB_")]
            gates.append(init_container("wait-for-schema", image, [
                "sh", "-c", f"until rasax-deploy migration-status; do sleep {WAIT_SECONDS}; done"], env=database))
        others = [self.address(dep) for dep in healthy if dep != MIGRATOR]
        if others:
            # The project image has the Python this wait needs, whatever image the pod runs.
            gates.append(init_container("wait-for-services", self.image(self.services["rasa-x"]["image"]),
                                        ["python", "-c", WAIT_FOR_PORTS], args=others))
        return gates

    def project_pod(self, workload: Workload, container: dict) -> None:
        """The key pair at /app/auth (as compose mounts auth/), logs in the pod, uid 1001."""
        container["mounts"] += [{"name": "auth", "mountPath": "/app/auth", "readOnly": True},
                                {"name": "logs", "mountPath": "/app/logs"}]
        workload.volumes += [{"name": "auth", "secret": {"secretName": AUTH_SECRET, "defaultMode": 0o440}},
                             {"name": "logs", "emptyDir": {}}]
        workload.security = {"runAsUser": SERVICE_UID, "fsGroup": SERVICE_UID}
        workload.secrets += (AUTH_SECRET,)

    def workload(self, name: str) -> Workload:
        spec = self.services[name]
        container = self.container(name, spec)
        kind = "StatefulSet" if name in DATA else "Deployment"
        workload = Workload(name, kind, [container], replicas=self.options.replicas.get(name, 1), port=PORTS[name])
        workload.init_containers = self.gates(name, spec, container["image"], container["env"])
        if "stop_grace_period" in spec:
            workload.stop_seconds = _seconds(spec["stop_grace_period"])
        if spec["image"] == self.services["rasa-x"]["image"]:
            self.project_pod(workload, container)
        if name == "rasa-x":
            container["mounts"].append({"name": "models", "mountPath": "/app/models"})
            workload.volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": "rasax-models"}})
        if name in DATA:
            owner, size = DATA[name]
            path = next(v.split(":")[1] for v in spec["volumes"] if v.split(":")[0] in self.named_volumes)
            # PostgreSQL refuses a data folder with lost+found in it: its own subfolder of the volume.
            mount = {"name": "data", "mountPath": path, **({"subPath": "pgdata"} if name == "db" else {})}
            container["mounts"].append(mount)
            workload.init_containers.insert(0, init_container(
                "data-owner", container["image"], ["sh", "-c", f"chown {owner}: {path} && chmod 700 {path}"],
                mounts=[mount], sized_like=name, security={"runAsUser": 0}))
            workload.claims.append(self.claim("data", size, "ReadWriteOnce"))
        if name == "app":
            container["mounts"].append({"name": "actions", "mountPath": "/app/actions", "readOnly": True})
            workload.volumes.append({"name": "actions", "configMap": {"name": ACTIONS_CONFIGMAP,
                                                                      "items": self.actions_items}})
            workload.configmaps += (ACTIONS_CONFIGMAP,)
        if name == "nginx":
            container["mounts"].append({"name": "config", "mountPath": "/etc/nginx/conf.d", "readOnly": True})
            workload.volumes.append({"name": "config", "configMap": {"name": NGINX_CONFIGMAP}})
            workload.configmaps += (NGINX_CONFIGMAP,)
        if any("secret" in v for c in workload.containers + workload.init_containers for v in c["env"]):
            workload.secrets += (CREDENTIALS_SECRET,)
        return workload

    def migration_job(self) -> Workload:
        spec = self.services[MIGRATOR]
        container = self.container(MIGRATOR, spec, replace_args=["rasax-deploy", "migrate", "--json"])
        container["env"] = [v for v in container["env"] if v["name"] != "SELF_PORT"]
        job = Workload(f"{MIGRATOR}-{__version__.replace('.', '-').replace('+', '-')}", "Job", [container])
        job.init_containers = self.gates(MIGRATOR, spec, container["image"], container["env"])
        self.project_pod(job, container)
        job.secrets += (CREDENTIALS_SECRET,)
        return job

    def claim(self, name: str, size: str, access: str) -> dict:
        return {"name": name, "accessModes": [access], "size": size, "storageClassName": self.options.storage_class}

    # -- configuration --

    def nginx_config(self) -> str:
        """The stack's nginx config, with the cluster's DNS: nginx's resolver does not search
        the namespace as the pods' resolver does, so its upstreams get their full names."""
        domain = f"{self.options.namespace}.svc.{self.options.cluster_domain}"
        text = render.plan(self.installed.merged(tls=False, single_container=False),
                           resolver=f"kube-dns.kube-system.svc.{self.options.cluster_domain}")[render.NGINX_CONF]
        upstream = re.compile(r"^(\s*set \$\w+ http://)([a-z0-9-]+)(:\d+;)$", re.M)
        if not upstream.search(text):
            raise ValueError("the nginx template names no upstream as `set $name http://service:port;`")
        return upstream.sub(lambda m: f"{m.group(1)}{m.group(2)}.{domain}{m.group(3)}", text)

    def actions(self) -> tuple[dict, dict, list[dict]]:
        """The actions package as ConfigMap data, binaryData and the items that put each file back
        at its path."""
        data, binary, items = {}, {}, []
        root = self.layout.actions
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = path.relative_to(root).as_posix()
            if any(part in relative for part in ACTIONS_SKIPPED):
                continue
            key = CONFIGMAP_KEY.sub("_", relative.replace("/", "."))
            if key in data or key in binary:
                raise ValueError(f"{path}: two files of actions/ would share the ConfigMap key {key!r}")
            content = path.read_bytes()
            try:
                data[key] = content.decode()
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(content).decode()
            items.append({"key": key, "path": relative})
        size = sum(len(v) for v in data.values()) + sum(len(v) for v in binary.values())
        if size > CONFIGMAP_LIMIT:
            raise ValueError(f"{root} holds {size} bytes, more than a ConfigMap takes (1 MiB): build an image "
                             f"FROM rasax/rasa-sdk with your actions in it and set it with --registry/kustomize")
        return data, binary, items

    def tls_host(self) -> str | None:
        """--host, else the first DNS name of the installation's certificate."""
        if self.options.host:
            return self.options.host
        from cryptography import x509

        cert = x509.load_pem_x509_certificate((self.layout.certs / render.CERT_NAME).read_bytes())
        try:
            names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = names.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            dns = []
        common = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        # An Ingress rule takes a DNS name, never an address.
        found = [name for name in dns + common if not _is_address(name)]
        if not found:
            raise ValueError(f"{self.layout.certs / render.CERT_NAME} names no DNS host for the Ingress: give --host")
        return found[0]

    # -- everything --

    def build(self) -> dict:
        """The objects' parameters, by template."""
        rasa = self.installed.rasa_services
        names = ["db", "rabbit", "redis", "event-service", "rasa-x"] + (["app", "rasa-production", "rasa-worker"]
                                                                        if rasa else []) + ["nginx"]
        names = [n for n in names if n not in self.external]
        actions, actions_binary, self.actions_items = self.actions() if rasa else ({}, {}, [])
        self.configmaps[NGINX_CONFIGMAP] = {"rasax.conf": self.nginx_config()}
        if rasa:
            self.configmaps[ACTIONS_CONFIGMAP] = {**actions, **actions_binary}
        self.secrets[CREDENTIALS_SECRET] = dict(self.secret_values)
        self.secrets[AUTH_SECRET] = {name: (self.layout.auth / name).read_text() for name in (PRIVATE_KEY, PUBLIC_KEY)}
        tls = self.installed.tls
        if tls:
            self.secrets[TLS_SECRET] = {"tls.crt": (self.layout.certs / render.CERT_NAME).read_text(),
                                        "tls.key": (self.layout.certs / render.KEY_NAME).read_text()}
        workloads = [self.workload(name) for name in names]
        job = self.migration_job()
        for item in workloads + [job]:
            item.annotations = self.checksums(item)
        # Several rasa-x pods share the models: then the claim must be writable from several nodes.
        models_access = "ReadWriteMany" if self.options.replicas.get("rasa-x", 1) > 1 else "ReadWriteOnce"
        return {
            "namespace": self.options.namespace,
            "labels": {"app.kubernetes.io/part-of": "rasax", "app.kubernetes.io/version": __version__},
            "configmaps": [{"name": NGINX_CONFIGMAP, "data": self.configmaps[NGINX_CONFIGMAP], "binary": {}}]
            + ([{"name": ACTIONS_CONFIGMAP, "data": actions, "binary": actions_binary}] if rasa else []),
            "secrets": [{"name": name, "type": "kubernetes.io/tls" if name == TLS_SECRET else "Opaque",
                         "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}
                        for name, values in self.secrets.items()],
            "credentials_secret": CREDENTIALS_SECRET,
            "workloads": workloads,
            "job": job,
            "models": self.claim("rasax-models", MODELS_SIZE, models_access),
            "ingress": {"host": self.tls_host() if tls else self.options.host, "tls": tls,
                        "secret": TLS_SECRET, "class": self.options.ingress_class,
                        "port": PORTS["nginx"]},
        }

    def checksums(self, workload: Workload) -> dict:
        """A changed ConfigMap or Secret the pod uses changes its template, which rolls it. The
        secrets' is a salted, slow fingerprint (deploy/secrets.py): annotations are readable by
        more people than Secrets, and an operator's password may be weak."""
        checksums = {}
        if workload.configmaps:
            config = json.dumps({n: self.configmaps[n] for n in sorted(set(workload.configmaps))}, sort_keys=True)
            checksums["checksum/config"] = hashlib.sha256(config.encode()).hexdigest()
        if workload.secrets:
            values = [f"{n}/{k}={v}" for n in sorted(set(workload.secrets)) for k, v in sorted(self.secrets[n].items())]
            checksums["checksum/secrets"] = fingerprint(f"k8s:{workload.name}", values)
        return checksums

    def files(self) -> dict[str, str]:
        """File name → content of every manifest, in the order `kubectl apply -f DIR` takes them."""
        parameters = self.build()
        env = templates()

        def one(template: str, **values) -> str:
            return env.get_template(f"kubernetes/{template}").render(version=__version__, **parameters, **values)

        files = {"00-namespace.yaml": one("namespace.yaml.j2"),
                 "01-secrets.yaml": one("secrets.yaml.j2"),
                 "02-configmaps.yaml": one("configmaps.yaml.j2"),
                 "03-storage.yaml": one("storage.yaml.j2"),
                 "04-migration-job.yaml": one("workload.yaml.j2", workload=parameters["job"])}
        for number, workload in enumerate(parameters["workloads"], start=10):
            files[f"{number}-{workload.name}.yaml"] = one("workload.yaml.j2", workload=workload)
        files["90-ingress.yaml"] = one("ingress.yaml.j2")
        return files


def documents(files: dict[str, str]) -> list[dict]:
    """Every object of the rendered files."""
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


def plan(layout: Layout, options: KubernetesOptions) -> dict[str, str]:
    return Manifests(layout, options).files()


def apply(layout: Layout, options: KubernetesOptions, output: Path | None = None) -> list[Outcome]:
    """Write the manifests to `output` (default: kubernetes/ in the installation), 0700 and 0600:
    they hold the secrets."""
    files = plan(layout, options)
    output = output or layout.root / "kubernetes"
    ensure_dir(output, 0o700)
    return [write_if_changed(output / name, text, 0o600) for name, text in files.items()]


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
