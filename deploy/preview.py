"""`up --dry-run` / `render --dry-run --json`: what would change, with nothing executed.

The files `init` and `render` would write, whether the Docker engine would be started, which
images would be built or pulled, and which containers would be created, recreated, started,
kept or removed. Nothing is written and nothing runs; the Docker engine, when one answers, is
only read. The Ansible role runs this in check mode, so `--check` predicts a new port or a new
version instead of reporting nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import compose, docker_engine, images, install, render, runtime
from .stack import Target, check_choices, proposed_model

KEEP = "keep"


@dataclass(frozen=True)
class Change:
    """One thing `up` would do. `action` is a verb: create, update, start, recreate, remove,
    build, pull — or keep, the only one that changes nothing."""

    kind: str  # file, engine, image, network, volume, service
    name: str
    action: str
    reason: str = ""

    @property
    def changed(self) -> bool:
        return self.action != KEEP


def _file(path: Path, data: bytes | str) -> Change:
    if isinstance(data, str):
        data = data.encode()
    if not path.exists():
        return Change("file", str(path), "create")
    return Change("file", str(path), KEEP if path.read_bytes() == data else "update")


def render_changes(target: Target, options: render.RenderOptions,
                   cert: str | None = None, key: str | None = None) -> list[Change]:
    """The files `render` would write (the certificate and key too, when given)."""
    layout = target.layout
    changes = []
    if cert and key:
        changes += [_file(layout.certs / render.CERT_NAME, Path(cert).read_bytes()),
                    _file(layout.certs / render.KEY_NAME, Path(key).read_bytes())]
    changes += [_file(layout.root / path, text) for path, text in render.plan(options).items()]
    return changes


def _image_changes(docker_client, tags: set[str]) -> list[Change]:
    def present(tag):
        return images._image(docker_client, tag) if docker_client else None

    ours = {tag: name for name, tag in images.STACK_IMAGES.items()}
    base = present(images.BASE_IMAGE)
    changes = []
    for tag in sorted(tags):
        image = present(tag)
        if tag in ours and images.can_build(ours[tag]):
            if base is None:
                changes.append(Change("image", tag, "build", "no base image yet"))
            elif image is None or image.labels.get(images.HASH_LABEL) != images.content_hash(ours[tag], base.id):
                changes.append(Change("image", tag, "build", "new" if image is None else "content changed"))
            else:
                changes.append(Change("image", tag, KEEP))
        else:
            changes.append(Change("image", tag, KEEP if image is not None else "pull"))
    return changes


def _container_changes(docker_client, plan: compose.Plan, rebuilt: set[str]) -> list[Change]:
    if docker_client is None:
        return ([Change("network", plan.network, "create")]
                + [Change("volume", v, "create") for v in plan.volumes]
                + [Change("service", s.name, "create") for s in plan.services])
    changes = [Change("network", plan.network, KEEP if docker_client.networks.list(names=[plan.network])
                      else "create")]
    volumes = {v.name for v in docker_client.volumes.list()}
    changes += [Change("volume", v, KEEP if v in volumes else "create") for v in plan.volumes]
    existing = {c.name: c for c in docker_client.containers.list(
        all=True, filters={"label": f"{compose.PROJECT_LABEL}={plan.project}"})}
    for service in plan.services:
        container = existing.pop(service.container, None)
        if container is None:
            changes.append(Change("service", service.name, "create"))
        elif service.image in rebuilt:
            changes.append(Change("service", service.name, "recreate", "its image would be rebuilt"))
        elif not runtime.matches(container, service, getattr(images._image(docker_client, service.image), "id", None)):
            changes.append(Change("service", service.name, "recreate", "configuration or image changed"))
        elif container.status != "running":
            changes.append(Change("service", service.name, "start"))
        else:
            changes.append(Change("service", service.name, KEEP))
    for container in existing.values():  # what `up` removes as no longer in the plan
        changes.append(Change("service", container.labels.get(compose.SERVICE_LABEL, container.name), "remove",
                              "no longer in the plan"))
    return changes


def up_changes(target: Target, options: render.RenderOptions, profiles: set[str],
               cert: str | None = None, key: str | None = None) -> list[Change]:
    """Everything `up` with these options would change, in the order it would."""
    check_choices(target, options, profiles, cert, key)
    layout = target.layout
    changes = [Change("file", str(o.path), "create" if o.action == install.CREATED else "update")
               for o in install.pending(layout, target.project)]
    changes += render_changes(target, options, cert, key)
    docker_client = docker_engine.running_client()
    changes.append(Change("engine", "docker", KEEP if docker_client else "start"))
    model = proposed_model(target, options)
    if not layout.env_file.exists():
        # A new installation: its secrets do not exist yet, so neither can the plan's settings.
        services = compose.active_services(model, profiles)
        changes += _image_changes(docker_client, {s["image"] for s in services.values() if s.get("image")})
        changes += [Change("service", name, "create") for name in compose.start_order(services)]
        return changes
    plan = compose.make_plan(model, layout, target.project, profiles)
    image_changes = _image_changes(docker_client, {s.image for s in plan.services})
    changes += image_changes
    rebuilt = {c.name for c in image_changes if c.action == "build"}
    changes += _container_changes(docker_client, plan, rebuilt)
    return changes
