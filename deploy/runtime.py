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

from .compose import (CONFIG_HASH_LABEL, DEPENDS_ON_LABEL, PROJECT_LABEL, SERVICE_LABEL, Plan, ServicePlan,
                      STOP_SECONDS, stop_order)
from .preflight import FINGERPRINT_LABEL

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
        labels = {PROJECT_LABEL: plan.project, "com.docker.compose.volume": name.split("_", 1)[1]}
        if name in plan.volume_fingerprints:  # which secrets its data is set up with (preflight)
            labels[FINGERPRINT_LABEL] = plan.volume_fingerprints[name]
        docker_client.volumes.create(name, labels=labels)
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
        ports=[p.container for p in service.ports], hostname=service.name, stop_timeout=service.stop_seconds,
    )
    return docker_client.containers.get(created["Id"])


def _stop(container) -> None:
    """Stop with the grace the container was made with (its plan's stop_seconds): `down` has no
    plan when the files are gone, and a container of an older version has its own."""
    container.stop(timeout=container.attrs["Config"].get("StopTimeout") or STOP_SECONDS)


def _container(docker_client, name: str):
    try:
        return docker_client.containers.get(name)
    except docker.errors.NotFound:
        return None


def matches(container, service: ServicePlan, image_id: str | None) -> bool:
    """What `up` keeps (and `up --dry-run` predicts it keeps): the container has the plan's
    settings and runs the current image."""
    return (image_id is not None
            and container.labels.get(CONFIG_HASH_LABEL) == service.labels[CONFIG_HASH_LABEL]
            and container.labels.get(IMAGE_ID_LABEL) == image_id)


def ensure_container(docker_client, service: ServicePlan, report: Report):
    """Keep a matching container, recreate a changed one, create a missing one; then start it."""
    image_id = docker_client.images.get(service.image).id
    container = _container(docker_client, service.container)
    if container is not None:
        if matches(container, service, image_id):
            if container.status != "running":
                container.start()
                report(service.name, "started")
            else:
                report(service.name, "unchanged")
            return container
        report(service.name, "recreating", reason="configuration or image changed")
        return _replace(docker_client, service, image_id, container, report)
    container = _create(docker_client, service, image_id)
    container.start()
    report(service.name, "started")
    return container


def _replace(docker_client, service: ServicePlan, image_id: str, old, report: Report):
    """Stop the old container and start the new one; when the new one cannot start (a port taken,
    a bad mount), the old one comes back as it was, so a running site keeps running."""
    was_running = old.status == "running"
    _stop(old)
    old.rename(f"{service.container}_replaced_{old.short_id}")
    new = None
    try:
        new = _create(docker_client, service, image_id)
        new.start()
    except docker.errors.APIError as exc:
        if new is not None:
            new.remove(force=True)
        old.rename(service.container)
        if was_running:
            old.start()
        report(service.name, "kept", reason="the new container did not start; the previous one runs again")
        raise DeployError(f"{service.name} could not start with the new settings ({exc.explanation or exc}); "
                          f"the previous {service.name} was put back", service.name) from None
    old.remove()
    report(service.name, "started")
    return new


def tail_logs(container, lines: int = LOG_LINES) -> str:
    try:
        return container.logs(tail=lines, timestamps=False).decode(errors="replace")
    except docker.errors.APIError:
        return ""


def _died(state: dict, name: str, restarts: dict[str, int]) -> bool:
    """Stopped, or restarted by its policy since we started watching (a restart loop looks
    "running" most of the time, so the restart count tells, not the status)."""
    count = state.get("RestartCount", 0)
    baseline = restarts.setdefault(name, count)
    return state["Status"] in ("exited", "dead", "restarting") or count > baseline


def wait_for(docker_client, service: ServicePlan, condition: str, report: Report, timeout: float,
             waiter: str | None = None, needs: list[ServicePlan] = (),
             restarts: dict[str, int] | None = None) -> None:
    """Until the service is healthy (or running / exited 0, as the condition asks) or the timeout.

    A service that stops or restarts meanwhile ends the wait at once with its last log lines; so
    does one of `needs` (what it depends on): a dead database is not worth 300 s of waiting.
    `restarts` holds each container's restart count when `up` started it. `waiter` is the
    service held back meanwhile: named once, and only when there is a wait.
    """
    restarts = {} if restarts is None else restarts
    started = time.monotonic()
    last_note = started
    first = True
    while True:
        if not first and waiter:
            report(waiter, "waiting", on=service.name, condition=condition)
            waiter = None
        first = False
        for dependency in needs:
            dep = _container(docker_client, dependency.container)
            if dep is None:
                raise DeployError(f"{dependency.name}, which {service.name} needs, no longer exists",
                                  dependency.name)
            dep_state = dep.attrs["State"]
            if dep_state["Status"] == "exited" and dep_state.get("ExitCode") == 0:
                continue  # a one-shot dependency (service_completed_successfully) that did its job
            if _died(dep_state, dependency.container, restarts):
                raise DeployError(f"{dependency.name} stopped (exit code {dep_state.get('ExitCode')}) while "
                                  f"{service.name} waited for it", dependency.name, tail_logs(dep))
        container = docker_client.containers.get(service.container)
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if condition == "service_completed_successfully":
            if state["Status"] == "exited":
                if state.get("ExitCode") == 0:
                    return
                raise DeployError(f"{service.name} exited with code {state.get('ExitCode')}",
                                  service.name, tail_logs(container))
        elif _died(state, service.container, restarts):
            restarted = f", restarted {state.get('RestartCount')} times" if state.get("RestartCount") else ""
            raise DeployError(f"{service.name} stopped (exit code {state.get('ExitCode')}{restarted}) instead of "
                              f"becoming {'healthy' if health else 'ready'}", service.name, tail_logs(container))
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
            _stop(container)
            container.remove()
            report(container.labels.get(SERVICE_LABEL, container.name), "removed", reason="no longer in the plan")


def up(docker_client, plan: Plan, report: Report, timeout: float = 300) -> None:
    ensure_network(docker_client, plan, report)
    ensure_volumes(docker_client, plan, report)
    remove_orphans(docker_client, plan, report)
    conditions_met: set[tuple[str, str]] = set()
    restarts: dict[str, int] = {}
    for service in plan.services:
        for dep, condition in service.depends_on.items():
            if (dep, condition) not in conditions_met:
                wait_for(docker_client, plan.service(dep), condition, report, timeout, waiter=service.name,
                         needs=plan.dependencies_of(dep), restarts=restarts)
                conditions_met.add((dep, condition))
        container = ensure_container(docker_client, service, report)
        container.reload()
        restarts[service.container] = container.attrs["State"].get("RestartCount", 0)
    for service in plan.services:
        if service.healthcheck and (service.name, "service_healthy") not in conditions_met:
            wait_for(docker_client, service, "service_healthy", report, timeout,
                     needs=plan.dependencies_of(service.name), restarts=restarts)


def down(docker_client, project: str, report: Report, volumes: bool = False,
         dependencies: dict[str, list[str]] | None = None) -> None:
    """Remove the project's containers, dependents first (nginx before rasa-x before the database).

    `dependencies` comes from the installation's files; without them (deleted) the order is
    read from the label every container of `up` carries.
    """
    containers = docker_client.containers.list(all=True, filters=_project_filter(project))
    by_service: dict[str, list] = {}
    known: dict[str, list[str]] = {}
    for container in containers:
        service = container.labels.get(SERVICE_LABEL, container.name)
        by_service.setdefault(service, []).append(container)
        if dependencies is not None and service in dependencies:
            known[service] = dependencies[service]
        elif service not in known:
            label = container.labels.get(DEPENDS_ON_LABEL, "")
            known[service] = [name for name in label.split(",") if name]
    for service in stop_order(known):
        for container in by_service[service]:
            _stop(container)
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
