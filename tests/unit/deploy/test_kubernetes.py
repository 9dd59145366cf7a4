"""`k8s render`: every object passes the Kubernetes API schemas of two versions in strict mode
(kubernetes-validate bundles them; no cluster runs here), and the objects say what the compose
install says: its health checks as probes, its start order as init containers and the migration
Job, its secrets (the installation's, never new ones) by reference, each container's variables."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from cli import main
from deploy import compose, kubernetes, render
from deploy.install import initialize
from deploy.layout import Layout
from deploy.secrets import PRIVATE_KEY, PUBLIC_KEY, SECRET_NAMES, read_secrets
from services.common.config import RASA_SERVER, SECRET_VARIABLES, SELF_PORT, SERVICE_ENVIRONMENT
from tests.unit.deploy.certs import self_signed

VERSIONS = ("1.29.0", "1.34.0")
DEFAULT = kubernetes.KubernetesOptions()


def installation(root: Path, **choices) -> Layout:
    layout = Layout(root)
    initialize(layout, "proj")
    render.remember(layout, render.RenderOptions(**choices))
    return layout


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return installation(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="module")
def tls_external(tmp_path_factory):
    """TLS, no Rasa servers, and PostgreSQL elsewhere (.env points there)."""
    root = tmp_path_factory.mktemp("k8s-tls")
    layout = installation(root, tls=True, rasa_services=False)
    cert, key = self_signed(root / "given", "tls.crt", "tls.key")
    render.install_certificate(layout, cert, key)
    env = layout.env_file.read_text().replace("DB_HOST=db\n", "DB_HOST=pg.example.com\n").replace(
        "DB_PORT=5432\n", "DB_PORT=6432\n")
    layout.env_file.write_text(env)
    return layout


def objects(layout: Layout, options: kubernetes.KubernetesOptions = DEFAULT) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in kubernetes.documents(kubernetes.plan(layout, options))}


def pod(objects_, kind: str, name: str) -> dict:
    return objects_[(kind, name)]["spec"]["template"]["spec"]


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("variant", ["default", "tls-external-replicas"])
def test_every_object_passes_the_kubernetes_schemas_in_strict_mode(layout, tls_external, variant, version):
    if variant == "default":
        docs = kubernetes.documents(kubernetes.plan(layout, DEFAULT))
    else:
        options = kubernetes.KubernetesOptions(namespace="bots", replicas={"rasa-x": 2, "event-service": 3},
                                               host="rasa.example.com", ingress_class="nginx", storage_class="fast",
                                               registry="registry.example.com/rasax")
        docs = kubernetes.documents(kubernetes.plan(tls_external, options))
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Secret", "ConfigMap", "PersistentVolumeClaim", "Job", "Deployment", "Service",
            "Ingress"} <= kinds
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_strict_validation_refuses_a_field_kubernetes_does_not_know(layout):
    """The check above can fail: a misspelled field of a rendered Deployment is refused."""
    deployment = copy.deepcopy(objects(layout)[("Deployment", "rasa-x")])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_workloads_are_the_compose_stacks_services(layout, tls_external):
    default = objects(layout)
    assert {name for kind, name in default if kind == "Deployment"} == {
        "rasa-x", "event-service", "rasa-production", "rasa-worker", "app", "nginx"}
    assert {name for kind, name in default if kind == "StatefulSet"} == {"db", "rabbit", "redis"}
    # The stateful servers keep their data in claims, owned by the user their image runs as.
    db = default[("StatefulSet", "db")]
    assert db["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert pod(default, "StatefulSet", "db")["initContainers"][0]["command"][-1].startswith("chown postgres: ")
    assert default[("Service", "db")]["spec"]["clusterIP"] == "None"
    # PostgreSQL elsewhere: no db of ours, and what waited for it waits for that server.
    external = objects(tls_external, kubernetes.KubernetesOptions(host="rasa.example.com"))
    assert ("StatefulSet", "db") not in external and ("Service", "db") not in external
    assert {name for kind, name in external if kind == "Deployment"} == {"rasa-x", "event-service", "nginx"}
    job = next(d for (kind, _), d in external.items() if kind == "Job")
    waits = {c["name"]: c for c in job["spec"]["template"]["spec"]["initContainers"]}
    assert waits["wait-for-services"]["args"] == ["pg.example.com:6432"]


def test_probes_are_the_compose_health_checks(layout):
    manifests = objects(layout)
    services = yaml.safe_load(render.plan(render.load_options(layout))["docker-compose.yml"])["services"]
    checked = 0
    for (kind, name), document in manifests.items():
        if kind not in ("Deployment", "StatefulSet"):
            continue
        healthcheck = services[name]["healthcheck"]
        test = compose.interpolate(healthcheck["test"], {})
        expected = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        container = document["spec"]["template"]["spec"]["containers"][0]
        period = compose.duration_ns(healthcheck["interval"]) // 10**9
        for kind_ in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container[kind_]
            assert probe["exec"]["command"] == expected, (name, kind_)
            assert probe["periodSeconds"] == period
            assert probe["timeoutSeconds"] == compose.duration_ns(healthcheck["timeout"]) // 10**9
        # Liveness gives up when compose calls the service unhealthy; startup allows compose's
        # whole wait, start period included (Rasa loading TensorFlow).
        assert container["livenessProbe"]["failureThreshold"] == healthcheck["retries"]
        start = compose.duration_ns(healthcheck.get("start_period", "0s")) // 10**9
        assert container["startupProbe"]["failureThreshold"] * period >= healthcheck["retries"] * period + start
        checked += 1
    assert checked == 9
    # Compose's `$$` escapes are gone: the probe's shell sees $POSTGRES_USER.
    assert "$POSTGRES_USER" in pod(manifests, "StatefulSet", "db")["containers"][0]["livenessProbe"]["exec"]["command"][2]
    assert "$$" not in yaml.safe_dump(list(manifests.values()))


def test_rasa_x_pods_get_the_compose_files_stop_grace(layout):
    objects_ = objects(layout)
    assert pod(objects_, "Deployment", "rasa-x")["terminationGracePeriodSeconds"] == 35
    assert "terminationGracePeriodSeconds" not in pod(objects_, "Deployment", "event-service")  # Kubernetes' 30 s


def test_replicas_are_configurable_for_the_stateless_services_only(layout):
    manifests = objects(layout, kubernetes.KubernetesOptions(replicas={"rasa-x": 2, "event-service": 3,
                                                                       "rasa-production": 2}))
    replicas = {name: d["spec"]["replicas"] for (kind, name), d in manifests.items() if kind == "Deployment"}
    assert replicas == {"rasa-x": 2, "event-service": 3, "rasa-production": 2, "rasa-worker": 1, "app": 1, "nginx": 1}
    # Two rasa-x pods share the models: the claim must be writable from several nodes.
    assert manifests[("PersistentVolumeClaim", "rasax-models")]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert objects(layout)[("PersistentVolumeClaim", "rasax-models")]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert kubernetes.parse_replicas(["nginx=4"]) == {"nginx": 4}
    for bad in ("db=2", "rasa-x=0", "rasa-x=two", "nobody=1"):
        with pytest.raises(ValueError, match="SERVICE=N|whole number"):
            kubernetes.parse_replicas([bad])


def test_secrets_are_the_installations_own_and_never_in_a_configmap(layout):
    before = {path.name: (path.read_text(), path.stat().st_mtime_ns) for path in layout.credentials.iterdir()}
    first = kubernetes.plan(layout, DEFAULT)
    assert kubernetes.plan(layout, DEFAULT) == first  # nothing random: rendering again changes nothing
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in layout.credentials.iterdir()} == before
    manifests = objects(layout)
    credentials = read_secrets(layout.credentials)
    assert decoded(manifests[("Secret", "rasax-credentials")]) == credentials
    assert decoded(manifests[("Secret", "rasax-auth")]) == {
        name: (layout.auth / name).read_text() for name in (PRIVATE_KEY, PUBLIC_KEY)}
    # No secret value anywhere but in the Secrets: not in a ConfigMap, an env value, an annotation.
    others = yaml.safe_dump([d for (kind, _), d in manifests.items() if kind != "Secret"])
    private_key = (layout.auth / PRIVATE_KEY).read_text().splitlines()[1]
    for value in [*credentials.values(), private_key]:
        assert value not in others
    assert "BEGIN PRIVATE KEY" not in others


def env_of(container: dict) -> dict[str, dict]:
    return {v["name"]: v for v in container.get("env", [])}


def test_each_container_gets_the_variables_its_service_reads(layout):
    manifests = objects(layout)
    for service in ("event-service", "rasa-x"):
        variables = env_of(pod(manifests, "Deployment", service)["containers"][0])
        assert set(variables) == set(SERVICE_ENVIRONMENT[service])
    job = next(d for (kind, _), d in manifests.items() if kind == "Job")
    migrator = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert set(migrator) == set(SERVICE_ENVIRONMENT["db-migration"]) - {SELF_PORT}
    for server in ("rasa-production", "rasa-worker"):
        variables = env_of(pod(manifests, "Deployment", server)["containers"][0])
        assert set(variables) == set(RASA_SERVER) | {"RASA_ENVIRONMENT", "MPLCONFIGDIR"}
    assert "env" not in pod(manifests, "Deployment", "app")["containers"][0]
    assert "env" not in pod(manifests, "Deployment", "nginx")["containers"][0]
    # Secrets by reference to the one Secret; the rest with .env's values.
    rasa_x = env_of(pod(manifests, "Deployment", "rasa-x")["containers"][0])
    for name, variable in rasa_x.items():
        if name in SECRET_VARIABLES:
            assert variable["valueFrom"] == {"secretKeyRef": {"name": "rasax-credentials", "key": name}}
        else:
            assert "valueFrom" not in variable
    assert rasa_x["RASA_X_HOST"]["value"] == "http://rasa-x:5002"
    assert env_of(pod(manifests, "StatefulSet", "db")["containers"][0])["POSTGRES_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "rasax-credentials", "key": "DB_PASSWORD"}}
    # The event service never holds the admin password or the tokens.
    assert not set(env_of(pod(manifests, "Deployment", "event-service")["containers"][0])) & {
        "RASA_X_PASSWORD", "RASA_X_TOKEN", "RASA_TOKEN", "JWT_SECRET", "PASSWORD_SALT"}
    # Rasa's tokens stay off its command line: start.py fills them in the process.
    args = pod(manifests, "Deployment", "rasa-production")["containers"][0]["args"]
    assert "--auth-token=${RASA_TOKEN}" in args and pod(manifests, "Deployment", "rasa-production")["containers"][0]["command"] == [
        "python", "/opt/rasax/start.py"]
    assert set(SECRET_NAMES) == set(read_secrets(layout.credentials))


def test_the_migration_gate_and_the_start_order(layout):
    manifests = objects(layout)
    job = next(d for (kind, _), d in manifests.items() if kind == "Job")
    assert job["metadata"]["name"] == f"db-migration-{__import__('services').__version__.replace('.', '-')}"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["rasax-deploy", "migrate", "--json"]
    assert job["spec"]["template"]["spec"]["initContainers"][0]["args"] == ["db:5432"]

    def gates(name):
        return {c["name"]: c for c in pod(manifests, "Deployment", name).get("initContainers", [])}

    for service, others in (("rasa-x", ["redis:6379"]), ("event-service", ["rabbit:5672"])):
        schema = gates(service)["wait-for-schema"]
        assert schema["command"] == ["sh", "-c", "until rasax-deploy migration-status; do sleep 3; done"]
        assert set(env_of(schema)) == {n for n in SERVICE_ENVIRONMENT["db-migration"] if n.startswith("DB_")}
        assert gates(service)["wait-for-services"]["args"] == others
    assert gates("rasa-production")["wait-for-services"]["args"] == ["rasa-x:5002", "event-service:5673", "app:5055"]
    # nginx waits for rasa-x only: Rasa's container is enough for compose too (service_started).
    assert gates("nginx")["wait-for-services"]["args"] == ["rasa-x:5002"]


def test_configmaps_and_their_checksums(layout, tmp_path):
    manifests = objects(layout)
    conf = manifests[("ConfigMap", "rasax-nginx")]["data"]["rasax.conf"]
    # nginx's resolver takes names as they are: the upstreams carry the namespace and cluster domain.
    assert "set $rasa_x http://rasa-x.rasax.svc.cluster.local:5002;" in conf
    assert "resolver kube-dns.kube-system.svc.cluster.local" in conf and "resolver 127.0.0.11" not in conf
    assert "listen 8080 default_server;" in conf and "8443" not in conf
    actions = manifests[("ConfigMap", "rasax-actions")]["data"]
    assert actions["actions.py"] == (layout.actions / "actions.py").read_text()
    # A changed action rolls the action server's pods, and only theirs.
    copy_root = tmp_path / "copy"
    import shutil

    shutil.copytree(layout.root, copy_root)
    copied = Layout(copy_root)
    (copied.actions / "extra").mkdir()
    (copied.actions / "extra" / "more.py").write_text("VALUE = 1\n")
    changed = objects(copied)
    annotations = {name: (manifests[("Deployment", name)], changed[("Deployment", name)])
                   for name in ("app", "rasa-x", "nginx")}
    config = {n: [d["spec"]["template"]["metadata"]["annotations"].get("checksum/config") for d in pair]
              for n, pair in annotations.items()}
    assert config["app"][0] != config["app"][1]
    assert config["rasa-x"] == [None, None] and config["nginx"][0] == config["nginx"][1] is not None
    assert "checksum/secrets" in manifests[("Deployment", "rasa-x")]["spec"]["template"]["metadata"]["annotations"]
    volume = pod(changed, "Deployment", "app")["volumes"][0]["configMap"]
    assert {"key": "extra.more.py", "path": "extra/more.py"} in volume["items"]


def test_tls_is_terminated_at_the_ingress_with_the_installations_certificate(tls_external):
    with pytest.raises(ValueError, match="names no DNS host for the Ingress: give --host"):
        kubernetes.plan(tls_external, DEFAULT)  # the test certificate names only 127.0.0.1
    manifests = objects(tls_external, kubernetes.KubernetesOptions(host="rasa.example.com"))
    ingress = manifests[("Ingress", "rasax")]["spec"]
    assert ingress["tls"] == [{"hosts": ["rasa.example.com"], "secretName": "rasax-tls"}]
    assert ingress["rules"][0]["host"] == "rasa.example.com"
    tls = manifests[("Secret", "rasax-tls")]
    assert tls["type"] == "kubernetes.io/tls"
    assert decoded(tls)["tls.crt"] == (tls_external.certs / render.CERT_NAME).read_text()
    # Without TLS the Ingress has none, and answers any host.
    plain = installation(tls_external.root.parent / "plain")
    rules = objects(plain)[("Ingress", "rasax")]["spec"]
    assert "tls" not in rules and "host" not in rules["rules"][0]


def test_the_command_writes_private_files_and_refuses_a_bad_replica_count(layout, tmp_path):
    output = tmp_path / "manifests"
    result = CliRunner().invoke(main, ["k8s", "render", "--dir", str(layout.root), "--output", str(output),
                                       "--replicas", "rasa-x=2", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in output.iterdir())
    assert files[0] == "00-namespace.yaml" and "04-migration-job.yaml" in files and "14-rasa-x.yaml" in files
    assert oct(output.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in output.iterdir()} == {"0o600"}
    assert yaml.safe_load((output / "14-rasa-x.yaml").read_text().split("\n---\n")[0])["spec"]["replicas"] == 2
    refused = CliRunner().invoke(main, ["k8s", "render", "--dir", str(layout.root), "--output", str(tmp_path / "x"),
                                        "--replicas", "db=2"])
    assert refused.exit_code == 2 and "SERVICE=N with SERVICE one of rasa-x" in refused.output
    bad_namespace = CliRunner().invoke(main, ["k8s", "render", "--dir", str(layout.root), "--output",
                                              str(tmp_path / "x"), "--namespace", "Rasa_X"])
    assert bad_namespace.exit_code == 1 and "namespace 'Rasa_X'" in bad_namespace.output
    assert not (tmp_path / "x").exists()
