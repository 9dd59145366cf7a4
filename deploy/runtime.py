"""The thin layer that carries a `compose.Plan` out with the Docker SDK.

It creates the network and volumes, creates or keeps each container (a container whose
config hash and image still match the plan is left running), starts services in dependency
order once what they depend on is healthy, and waits for health with progress. A timeout names
the service and shows its last log lines.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

import docker

from .compose import Plan, ServicePlan

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
IMAGE_ID_LABEL = "org.rasax.image-id"
LOG_LINES = 25

Report = Callable[..., None]  # report(service, state, **details)


class DeployError(RuntimeError):
    def __init__(self, message: str, service: str | None = None, logs: str = ""):
        super().__init__(message)
        self.service = service
        self.logs = logs


def _project_filter(project: str, service: str | None = None) -> dict:
    labels = [f"{PROJECT_LABEL}={project}"]
    if service:
        labels.append(f"{SERVICE_LABEL}={service}")
    return {"label": labels}


def ensure_network(docker_client, plan: Plan, report: Report) -> None:
    if docker_client.networks.list(names=[plan.network]):
        report(plan.network, "kept", kind="network")
        return
    docker_client.networks.create(plan.network, driver="bridge", labels={
        PROJECT_LABEL: plan.project, "com.docker.compose.network": plan.network.split("_", 1)[1]})
    report(plan.network, "created", kind="network")


def ensure_volumes(docker_client, plan: Plan, report: Report) -> None:
    existing = {v.name for v in docker_client.volumes.list()}
    for name in plan.volumes:
        if name in existing:
            report(name, "kept", kind="volume")
            continue
        docker_client.volumes.create(name, labels={PROJECT_LABEL: plan.project,
                                            "com.docker.compose.volume": name.split("_", 1)[1]})
        report(name, "created", kind="volume")


def _create(docker_client, service: ServicePlan, image_id: str):
    api = docker_client.api
    binds = {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in service.mounts}
    port_bindings = {}
    for port in service.ports:
        if port.host_ip:
            port_bindings[port.container] = (port.host_ip, port.host_port) if port.host_port else (port.host_ip,)
        else:
            port_bindings[port.container] = port.host_port
    restart = {"Name": service.restart} if service.restart != "no" else None
    host_config = api.create_host_config(binds=binds, port_bindings=port_bindings, restart_policy=restart,
                                         init=True)
    networking = api.create_networking_config(
        {service.network: api.create_endpoint_config(aliases=[service.name])})
    labels = dict(service.labels, **{IMAGE_ID_LABEL: image_id})
    created = api.create_container(
        service.image, command=service.command, entrypoint=service.entrypoint,
        environment=service.environment, name=service.container, user=service.user, labels=labels,
        healthcheck=service.healthcheck, host_config=host_config, networking_config=networking,
        ports=[p.container for p in service.ports], hostname=service.name,
    )
    return docker_client.containers.get(created["Id"])


def _container(docker_client, name: str):
    try:
        return docker_client.containers.get(name)
    except docker.errors.NotFound:
        return None


def ensure_container(docker_client, service: ServicePlan, report: Report):
    """Keep a matching container, recreate a changed one, create a missing one; then start it."""
    image_id = docker_client.images.get(service.image).id
    container = _container(docker_client, service.container)
    if container is not None:
        labels = container.labels
        same = (labels.get("com.docker.compose.config-hash") == service.labels["com.docker.compose.config-hash"]
                and labels.get(IMAGE_ID_LABEL) == image_id)
        if same:
            if container.status != "running":
                container.start()
                report(service.name, "started")
            else:
                report(service.name, "unchanged")
            return container
        report(service.name, "recreating", reason="configuration or image changed")
        container.stop(timeout=20)
        container.remove()
    container = _create(docker_client, service, image_id)
    container.start()
    report(service.name, "started")
    return container


def tail_logs(container, lines: int = LOG_LINES) -> str:
    try:
        return container.logs(tail=lines, timestamps=False).decode(errors="replace")
    except docker.errors.APIError:
        return ""


def wait_for(docker_client, service: ServicePlan, condition: str, report: Report, timeout: float,
             waiter: str | None = None) -> None:
    """Until the service is healthy (or running / exited 0, as the condition asks) or the timeout.

    `waiter` is the service held back meanwhile: named once, and only when there is a wait.
    """
    started = time.monotonic()
    last_note = started
    first = True
    while True:
        if not first and waiter:
            report(waiter, "waiting", on=service.name, condition=condition)
            waiter = None
        first = False
        container = docker_client.containers.get(service.container)
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if condition == "service_completed_successfully":
            if state["Status"] == "exited":
                if state.get("ExitCode") == 0:
                    return
                raise DeployError(f"{service.name} exited with code {state.get('ExitCode')}",
                                  service.name, tail_logs(container))
        elif state["Status"] in ("exited", "dead") or (state["Status"] == "restarting" and state.get("ExitCode")):
            raise DeployError(f"{service.name} stopped (exit code {state.get('ExitCode')}) instead of becoming "
                              f"{'healthy' if health else 'ready'}", service.name, tail_logs(container))
        elif condition == "service_started" or health is None:
            if state["Running"]:
                return
        elif health == "healthy":
            report(service.name, "healthy", seconds=round(time.monotonic() - started, 1))
            return
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise DeployError(f"{service.name} is not healthy after {int(timeout)} s (health: {health})",
                              service.name, tail_logs(container))
        if time.monotonic() - last_note >= 10:
            last_note = time.monotonic()
            report(service.name, "waiting", health=health, seconds=int(elapsed))
        time.sleep(0.5)


def remove_orphans(docker_client, plan: Plan, report: Report) -> None:
    wanted = {s.container for s in plan.services}
    for container in docker_client.containers.list(all=True, filters=_project_filter(plan.project)):
        if container.name not in wanted:
            container.stop(timeout=20)
            container.remove()
            report(container.labels.get(SERVICE_LABEL, container.name), "removed", reason="no longer in the plan")


def up(docker_client, plan: Plan, report: Report, timeout: float = 300) -> None:
    ensure_network(docker_client, plan, report)
    ensure_volumes(docker_client, plan, report)
    remove_orphans(docker_client, plan, report)
    conditions_met: set[tuple[str, str]] = set()
    for service in plan.services:
        for dep, condition in service.depends_on.items():
            if (dep, condition) not in conditions_met:
                wait_for(docker_client, plan.service(dep), condition, report, timeout, waiter=service.name)
                conditions_met.add((dep, condition))
        ensure_container(docker_client, service, report)
    for service in plan.services:
        if service.healthcheck and (service.name, "service_healthy") not in conditions_met:
            wait_for(docker_client, service, "service_healthy", report, timeout)


def down(docker_client, project: str, report: Report, volumes: bool = False) -> None:
    containers = docker_client.containers.list(all=True, filters=_project_filter(project))
    for container in containers:
        service = container.labels.get(SERVICE_LABEL, container.name)
        container.stop(timeout=20)
        container.remove()
        report(service, "removed")
    for network in docker_client.networks.list(filters=_project_filter(project)):
        network.remove()
        report(network.name, "removed", kind="network")
    if volumes:
        for volume in docker_client.volumes.list(filters=_project_filter(project)):
            volume.remove()
            report(volume.name, "removed", kind="volume")


def _uptime(started_at: str) -> int | None:
    try:
        started = datetime.fromisoformat(started_at[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return None
    return int((datetime.now(timezone.utc) - started).total_seconds())


def status(docker_client, project: str) -> list[dict]:
    rows = []
    for container in docker_client.containers.list(all=True, filters=_project_filter(project)):
        state = container.attrs["State"]
        rows.append({
            "service": container.labels.get(SERVICE_LABEL, container.name),
            "container": container.name,
            "state": state["Status"],
            "health": (state.get("Health") or {}).get("Status", "-"),
            "image": container.attrs["Config"]["Image"],
            "uptime_seconds": _uptime(state.get("StartedAt", "")) if state["Running"] else None,
        })
    return sorted(rows, key=lambda r: r["service"])


def logs(docker_client, project: str, service: str | None, follow: bool, tail: int | str = "all"):
    containers = docker_client.containers.list(all=True, filters=_project_filter(project, service))
    if not containers:
        raise DeployError(f"no container of {service or 'project ' + project} exists", service)
    if follow and len(containers) > 1:
        raise DeployError("-f follows one service: name it, e.g. `rasax-deploy logs rasa-x -f`")
    for container in sorted(containers, key=lambda c: c.name):
        name = container.labels.get(SERVICE_LABEL, container.name)
        stream = container.logs(stream=True, follow=follow, tail=tail)
        for line in _lines(stream):
            yield name, line


def _lines(chunks):
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace")
    if buffer:
        yield buffer.decode(errors="replace")
