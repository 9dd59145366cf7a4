"""`doctor`: read-only checks of the failures Rasa X deployments classically had.

Each check answers PASS, WARN or FAIL with what was expected, what was found and the command or
edit that fixes it. None writes, restarts or creates anything: what it needs from inside the
stack it asks inside the containers (the broker's own `rabbitmqctl`, a probe in the event
service with that service's own credentials), so no secret goes on a command line or leaves a
container. A check that cannot be made (the engine away, a container missing) is a FAIL that
says so, never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable

from . import images, rasa_servers, render, runtime
from .environment import RASA_SERVICES
from .layout import read_env
from .stack import RefusedError, Target
from .stack_api import StackApi, as_admin

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
EVENT_SERVICE, RABBIT = "event-service", "rabbit"
# What the host needs free to keep going: the broker blocks publishers below its own limit.
DISK_WARN_BYTES, DISK_FAIL_BYTES = 5 << 30, 1 << 30
MEMORY_WARN_BYTES = 1 << 30
CERT_WARN_DAYS = 14
CLOCK_WARN_SECONDS = 2.0
DEPTH_SAMPLE_SECONDS = 2.0
_ABSOLUTE_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?$", re.IGNORECASE)

# Connects to the broker the way the event service does, with the credentials of its environment.
_BROKER_PROBE = """
import json, pika
from services.common.config import rabbit_settings
s = rabbit_settings()
try:
    pika.BlockingConnection(pika.ConnectionParameters(s.host, s.port, s.vhost,
        pika.PlainCredentials(s.username, s.password), connection_attempts=1, socket_timeout=5)).close()
    print(json.dumps({"ok": True}))
except Exception as exc:
    print(json.dumps({"ok": False, "reason": type(exc).__name__ + (": " + str(exc) if str(exc) else "")}))
"""


@dataclass
class Check:
    name: str
    status: str
    found: str
    expected: str = ""
    fix: str = ""


class Stack:
    """What the checks read, gathered once: .env, the containers, rasa-x's health."""

    def __init__(self, target: Target, docker_client=None):
        self.target = target
        self.root = target.layout.root
        self.env = read_env(target.layout)
        self.docker = docker_client or images.client()
        self.containers = {c.labels.get("com.docker.compose.service"): c for c in self.docker.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={target.project}"})}
        self.api = StackApi.of(target)
        self._health = None

    def running(self, service: str):
        container = self.containers.get(service)
        return container if container is not None and container.status == "running" else None

    def health(self) -> dict:
        if self._health is None:
            self._health = self.api.call("GET", "/api/health", expect=(200, 503)).json()
        return self._health

    def up(self) -> str:
        return f"rasax-deploy up --dir {self.root}"


def check_containers(stack: Stack) -> Check:
    rows = runtime.status(stack.docker, stack.target.project)
    if not rows:
        return Check("containers", FAIL, f"no container of project {stack.target.project}",
                     "every service running and healthy", stack.up())
    bad = [f"{r['service']} {r['state']}/{r['health']}" for r in rows
           if r["state"] != "running" or r["health"] not in ("healthy", "-")]
    if bad:
        first = bad[0].split()[0]
        return Check("containers", FAIL, ", ".join(bad), "every service running and healthy",
                     f"rasax-deploy logs {first} --dir {stack.root}, then {stack.up()}")
    return Check("containers", PASS, f"{len(rows)} running and healthy")


def check_migrations(stack: Stack) -> Check:
    database = stack.health().get("database", {})
    state = (database.get("migration") or {})
    if database.get("status") != "ok":
        return Check("migrations", FAIL, f"database {database.get('status')}: {database.get('reason', '')}",
                     "rasa-x reaches its database", f"rasax-deploy logs db --dir {stack.root}")
    if state.get("status") != "completed":
        return Check("migrations", FAIL, f"schema {state.get('status')} at {state.get('current_revision')}",
                     f"schema at {state.get('target_revision')}", f"rasax-deploy migrate --dir {stack.root}")
    return Check("migrations", PASS, f"schema at {state.get('current_revision')}")


def check_broker(stack: Stack) -> Check:
    container = stack.running(EVENT_SERVICE)
    if container is None:
        return Check("broker login", FAIL, f"{EVENT_SERVICE} is not running, nothing logs in to the broker",
                     f"{EVENT_SERVICE} connected with RABBITMQ_USERNAME/RABBITMQ_PASSWORD", stack.up())
    code, output = container.exec_run(["python", "-c", _BROKER_PROBE])
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {"ok": False, "reason": f"the probe failed (exit {code})"}
    if not answer["ok"]:
        return Check("broker login", FAIL, f"{EVENT_SERVICE} cannot log in: {answer['reason']}",
                     f"the broker accepts {stack.env.get('RABBITMQ_USERNAME')} with RABBITMQ_PASSWORD of .env",
                     "give the broker user the password of credentials/RABBITMQ_PASSWORD (`docker exec -it "
                     f"{stack.target.project}_rabbit_1 rabbitmqctl change_password "
                     f"{stack.env.get('RABBITMQ_USERNAME')} <it>`), then {stack.up()}")
    return Check("broker login", PASS, f"{stack.env.get('RABBITMQ_USERNAME')} logs in")


def _rabbitmqctl(container, *args: str):
    code, output = container.exec_run(["rabbitmqctl", "-q", *args, "--formatter", "json"])
    if code != 0:
        message = " ".join(output.decode(errors="replace").split())[:160]
        raise RuntimeError(f"rabbitmqctl {args[0]} exited {code}: {message}")
    return json.loads(output)


def _queue(container, vhost: str, name: str) -> dict | None:
    queues = _rabbitmqctl(container, "list_queues", "-p", vhost, "name", "messages", "consumers")
    return next((q for q in queues if q["name"] == name), None)


def check_queue(stack: Stack) -> list[Check]:
    rabbit = stack.running(RABBIT)
    queue, exchange = stack.env.get("RABBITMQ_QUEUE"), stack.env.get("RABBITMQ_EXCHANGE")
    vhost = stack.env.get("RABBITMQ_VHOST", "/")
    if rabbit is None:
        return [Check("events queue", FAIL, "the broker is not running", f"queue {queue}", stack.up())]
    first = _queue(rabbit, vhost, queue)
    if first is None:
        return [Check("events queue", FAIL, f"no queue {queue} on vhost {vhost}", f"queue {queue} (the event "
                      f"service declares it when it starts)", f"rasax-deploy up --dir {stack.root}")]
    bindings = _rabbitmqctl(rabbit, "list_bindings", "-p", vhost, "source_name", "destination_name")
    bound = any(b["source_name"] == exchange and b["destination_name"] == queue for b in bindings)
    checks = [Check("events queue bound", PASS if bound else FAIL,
                    f"{queue} {'is' if bound else 'is not'} bound to {exchange}",
                    f"{queue} bound to Rasa's exchange {exchange}",
                    "" if bound else f"restart the event service, which binds it: `docker restart "
                                     f"{stack.target.project}_{EVENT_SERVICE}_1`")]
    if not first["consumers"]:
        checks.append(Check("events consumer", FAIL, f"{queue} has no consumer ({first['messages']} waiting)",
                            f"the event service consuming {queue}",
                            f"rasax-deploy logs {EVENT_SERVICE} --dir {stack.root}, then {stack.up()}"))
        return checks
    time.sleep(DEPTH_SAMPLE_SECONDS)
    second = _queue(rabbit, vhost, queue) or first
    growing = second["messages"] > first["messages"]
    checks.append(Check("events consumer", WARN if growing else PASS,
                        f"{first['consumers']} consumer(s); depth {first['messages']} → {second['messages']} in "
                        f"{DEPTH_SAMPLE_SECONDS:.0f} s", "a depth that does not grow",
                        f"the event service falls behind: raise EVENT_SERVICE_WORKERS in .env, {stack.up()}"
                        if growing else ""))
    return checks


def check_tokens(stack: Stack) -> Check:
    """Each container that holds RASA_X_TOKEN (rasa-x, which checks it, and the Rasa servers,
    whose endpoints send it) holds .env's: an edit without a restart breaks every model pull."""
    wanted = stack.env.get("RASA_X_TOKEN")
    holders, differ = [], []
    for service, container in sorted(stack.containers.items()):
        values = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
        if "RASA_X_TOKEN" in values:
            holders.append(service)
            if values["RASA_X_TOKEN"] != wanted:
                differ.append(service)
    if differ:
        return Check("RASA_X_TOKEN", FAIL, f"{', '.join(differ)} run(s) with another RASA_X_TOKEN than .env's",
                     "rasa-x and Rasa's endpoints with RASA_X_TOKEN of .env",
                     f"{stack.up()} (recreates them with .env's value)")
    if not any(s in RASA_SERVICES for s in holders):
        return Check("RASA_X_TOKEN", WARN, f"only {', '.join(holders) or 'no container'} holds it; no Rasa server "
                     f"in the stack", "Rasa's endpoints with RASA_X_TOKEN", "your own Rasa's endpoints.yml must "
                     "carry RASA_X_TOKEN in its model server URL (`rasax-deploy up --rasa` runs Rasa here)")
    return Check("RASA_X_TOKEN", PASS, f"the same in {', '.join(holders)}")


def check_production_model(stack: Stack, api=None) -> Check:
    api = api or as_admin(stack.target)
    tagged = [m["model"] for m in api.call("GET", "/api/models").json() if "production" in (m.get("tags") or [])]
    if not tagged:
        return Check("production model", FAIL, "no model is tagged production", "a model tagged production",
                     f"rasax-deploy train --dir {stack.root} --tag production, or tag an uploaded one: "
                     f"PUT /api/models/<name>/tags/production")
    container = stack.running(rasa_servers.PRODUCTION)
    if container is None:
        return Check("production model", WARN, f"{tagged[0]} is tagged production; no rasa-production in the "
                     f"stack to load it", "rasa-production serving it", f"{stack.up()} --rasa")
    loaded = rasa_servers.loaded_model(container, rasa_servers.PRODUCTION)
    if "(" in loaded or loaded == rasa_servers.NO_MODEL:
        return Check("production model", FAIL, f"rasa-production runs {loaded}", f"rasa-production serving "
                     f"{tagged[0]}", f"rasax-deploy logs rasa-production --dir {stack.root} (a model it "
                     f"cannot load, or RASA_X_TOKEN: see that check)")
    return Check("production model", PASS, f"{tagged[0]} tagged and loaded ({loaded})")


def check_disk_free_limit(stack: Stack) -> Check:
    value = stack.env.get("RABBITMQ_DISK_FREE_LIMIT", "")
    if not _ABSOLUTE_LIMIT.match(value.strip()):
        return Check("broker disk limit", FAIL, f"RABBITMQ_DISK_FREE_LIMIT={value or '(unset)'}",
                     "an absolute size, e.g. 1GB (a relative one blocks Rasa's publishers on small disks)",
                     f"set RABBITMQ_DISK_FREE_LIMIT=1GB in .env, then {stack.up()}")
    rabbit = stack.running(RABBIT)
    if rabbit is not None:
        alarms = _rabbitmqctl(rabbit, "status").get("alarms") or []
        if alarms:
            return Check("broker disk limit", FAIL, f"the broker raised {alarms}: publishers are blocked",
                         "no resource alarm", "free disk space (or memory) on the host")
    return Check("broker disk limit", PASS, f"{value}, no alarm")


def check_host(stack: Stack) -> list[Check]:
    usage = shutil.disk_usage(stack.root)
    free = usage.free
    disk = Check("disk", PASS if free >= DISK_WARN_BYTES else WARN if free >= DISK_FAIL_BYTES else FAIL,
                 f"{free / 2**30:.1f} GiB free on {stack.root}", f"at least {DISK_WARN_BYTES >> 30} GiB free",
                 "" if free >= DISK_WARN_BYTES else "free space: old backups (`rasax-deploy backup --keep N`), "
                                                    "models, `docker image prune`")
    available = _mem_available()
    memory = Check("memory", PASS if available is None or available >= MEMORY_WARN_BYTES else WARN,
                   "unknown" if available is None else f"{available / 2**30:.1f} GiB available",
                   f"at least {MEMORY_WARN_BYTES >> 30} GiB available", "" if available is None or
                   available >= MEMORY_WARN_BYTES else "stop what else runs here, or add memory")
    return [disk, memory]


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_port(stack: Stack) -> Check:
    try:
        status = stack.api.call("GET", "/api/health", expect=(200, 503)).status_code
    except RefusedError:
        return Check("port", FAIL, f"nothing answers at {stack.api.base}", "nginx answering on the remembered "
                     "port", f"rasax-deploy status --dir {stack.root}, then {stack.up()}")
    return Check("port", PASS if status == 200 else FAIL, f"{stack.api.base}/api/health answers {status}",
                 "200", "" if status == 200 else f"rasax-deploy logs rasa-x --dir {stack.root}")


def check_certificate(stack: Stack, now: datetime | None = None) -> Check:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = stack.root / "certs" / render.CERT_NAME, stack.root / "certs" / render.KEY_NAME
    if not cert_path.exists():
        tls = render.load_options(stack.target.layout).tls
        return Check("certificate", FAIL if tls else PASS, "no certificate" + (" while TLS is on" if tls else
                     " (TLS off)"), "", "rasax-deploy up --tls --cert FILE --key FILE" if tls else "")
    fix = f"rasax-deploy up --dir {stack.root} --cert FULLCHAIN.pem --key KEY.pem (a matching pair)"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (ValueError, OSError) as exc:
        return Check("certificate", FAIL, f"cannot read the pair: {exc}", "a PEM certificate and its key", fix)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.PEM, public) != \
            key.public_key().public_bytes(serialization.Encoding.PEM, public):
        return Check("certificate", FAIL, f"{key_path.name} is not the key of {cert_path.name}",
                     "the certificate's own private key", fix)
    left = cert.not_valid_after_utc - (now or datetime.now(timezone.utc))
    if left.total_seconds() <= 0:
        return Check("certificate", FAIL, f"expired {cert.not_valid_after_utc:%Y-%m-%d}", "a valid certificate", fix)
    if left.days < CERT_WARN_DAYS:
        return Check("certificate", WARN, f"expires in {left.days} days", f"more than {CERT_WARN_DAYS} days", fix)
    return Check("certificate", PASS, f"key matches, valid until {cert.not_valid_after_utc:%Y-%m-%d}")


def check_clock(stack: Stack) -> Check:
    """Rasa's event times and JWT expiry assume one clock: the engine's (all containers share its
    kernel) against this machine's."""
    engine = stack.docker.info().get("SystemTime", "")
    try:
        engine_time = datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", engine).replace("Z", "+00:00"))
    except ValueError:
        return Check("clock", WARN, f"the engine's time is unreadable ({engine!r})", "", "")
    skew = abs((engine_time - datetime.now(timezone.utc)).total_seconds())
    return Check("clock", PASS if skew < CLOCK_WARN_SECONDS else WARN, f"engine and host differ by {skew:.1f} s",
                 f"less than {CLOCK_WARN_SECONDS:.0f} s", "" if skew < CLOCK_WARN_SECONDS else
                 "run NTP (systemd-timesyncd or chrony) on the Docker host")


# (name shown when the check itself cannot be made, the check)
CHECKS: list[tuple[str, Callable[[Stack], Check | list[Check]]]] = [
    ("containers", check_containers), ("migrations", check_migrations), ("broker login", check_broker),
    ("events queue", check_queue), ("RASA_X_TOKEN", check_tokens), ("production model", check_production_model),
    ("broker disk limit", check_disk_free_limit), ("disk and memory", check_host), ("port", check_port),
    ("certificate", check_certificate), ("clock", check_clock),
]


def run(target: Target, docker_client=None) -> list[Check]:
    target.require_installation()
    stack = Stack(target, docker_client)
    results: list[Check] = []
    for name, check in CHECKS:
        try:
            found = check(stack)
        except Exception as exc:  # a check that cannot be made is a finding, not a crash
            found = Check(name, FAIL, f"could not check: {type(exc).__name__}: {str(exc)[:200]}",
                          "", f"rasax-deploy status --dir {stack.root}")
        results.extend(found if isinstance(found, list) else [found])
    return results


def failed(results: list[Check]) -> bool:
    return any(r.status == FAIL for r in results)


def as_dicts(results: list[Check]) -> list[dict]:
    return [asdict(r) for r in results]

