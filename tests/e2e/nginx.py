"""`nginx -t` of a rendered config with the stack's own nginx image, in a throwaway container.

The rendered nginx-config/ is mounted where the nginx service mounts it (/etc/nginx/conf.d), and
certs/ on /etc/nginx/certs, so the check sees exactly the files, paths and nginx build of a
deployment. The image is built (or kept, when its content hash is current) as `up` would.
"""

from __future__ import annotations

from pathlib import Path

from deploy import images, render

NGINX_IMAGE = images.STACK_IMAGES["nginx"]


def ensure_nginx_image(docker_client) -> None:
    images.build(docker_client, "nginx", print)


def nginx_t(docker_client, folder: Path, conf_text: str, certs: Path | None = None,
            hosts: dict[str, str] | None = None) -> tuple[int, str]:
    """(exit code, output) of `nginx -t` on `conf_text` as the deployment's nginx-config/rasax.conf;
    `hosts` (name → address) for names nginx resolves at start, such as a resolver given by name."""
    conf_d = folder / "nginx-config"
    conf_d.mkdir(parents=True, exist_ok=True)
    (conf_d / Path(render.NGINX_CONF).name).write_text(conf_text)
    volumes = {str(conf_d): {"bind": "/etc/nginx/conf.d", "mode": "ro"}}
    if certs is not None:
        volumes[str(certs)] = {"bind": render.CERT_DIR, "mode": "ro"}
    container = docker_client.containers.run(NGINX_IMAGE, ["nginx", "-t"], volumes=volumes, detach=True,
                                             network_mode="none", labels={"org.rasax.test": "nginx-t"},
                                             extra_hosts=hosts)
    try:
        status = container.wait(timeout=60)["StatusCode"]
        return status, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
