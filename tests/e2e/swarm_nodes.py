"""A real multi-node Docker Swarm on this one machine, for the swarm tests and benchmark.

Each node is a dockerd of its own in a network namespace of its own (`ip netns`), started with
`nsenter --net=` (not `ip netns exec`, which remounts /sys and hides the cgroups dockerd needs),
with its own data root, exec root, socket, pid file and cgroup parent, so the machine's own
engine is never touched. The namespaces hang on one bridge in a namespace of its own (the "LAN",
whose empty firewall lets the nodes talk: the host's FORWARD policy, which Docker sets to DROP,
does not see it); the host has an address on it too, so tests reach every node directly. There
is no default route: nothing a node runs reaches beyond this machine. The nodes' DNS server is
a stub on the host's LAN address that knows no name (NXDOMAIN at once, as a real resolver
answers for `rasa-production` when the stack has none): without one, Docker's embedded DNS waits
10 s for an upstream that cannot be reached, and rasa-x's health check times out.

Everything is found again by name (namespaces, links) and by pid file (daemons): `remove()`
cleans up what a killed earlier run left, and stops only the daemons these pid files name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "rasax-swarm"
LAN = f"{PREFIX}-lan"
SUBNET = "192.168.213"
HOST_ADDRESS = f"{SUBNET}.1"
HOST_LINK = "rxsw-host"
# Overlay networks get their subnets from here, apart from the nodes' own LAN.
ADDRESS_POOL = "10.214.0.0/16"
ROOT = Path(__file__).resolve().parents[2]


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()}")
    return result


class NoNames(threading.Thread):
    """A DNS server answering NXDOMAIN to every question, on HOST_ADDRESS:53 (UDP)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind((HOST_ADDRESS, 53))

    def run(self):
        while True:
            try:
                query, client = self.socket.recvfrom(512)
            except OSError:  # closed
                return
            if len(query) < 12:
                continue
            # The question's id and RD bit; QR, RA and RCODE 3 (NXDOMAIN); the question only.
            flags = 0x8000 | (int.from_bytes(query[2:4], "big") & 0x0100) | 0x0080 | 3
            self.socket.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:6] + bytes(6) + query[12:], client)

    def close(self):
        self.socket.close()


@dataclass
class Node:
    index: int

    @property
    def name(self) -> str:
        return f"{PREFIX}-{self.index}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def netns(self) -> Path:
        return Path("/var/run/netns") / self.name

    @property
    def socket(self) -> str:
        return f"/run/{self.name}.sock"

    @property
    def pidfile(self) -> Path:
        return Path(f"/run/{self.name}.pid")

    @property
    def data_root(self) -> Path:
        return Path(f"/var/lib/{self.name}")

    @property
    def exec_root(self) -> Path:
        return Path(f"/run/{self.name}")

    @property
    def log(self) -> Path:
        return Path(f"/tmp/{self.name}.log")

    @property
    def env(self) -> dict[str, str]:
        """The environment of a docker or rasax-deploy command that talks to this node."""
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}

    def client(self, timeout: int = 300):
        import docker

        return docker.DockerClient(base_url=f"unix://{self.socket}", timeout=timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} on {self.name} exited {result.returncode}: "
                               f"{result.stderr.strip()}")
        return result

    def rasax_deploy(self, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT,
                                env=self.env, timeout=timeout)
        print(f"$ DOCKER_HOST=unix://{self.socket} rasax-deploy {' '.join(args)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise RuntimeError(f"rasax-deploy {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    # -- life --

    def start(self) -> None:
        """The namespace on the LAN, then dockerd in it; returns once it answers."""
        veth, peer = f"rxsw-n{self.index}", f"rxsw-l{self.index}"
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", veth, "netns", self.name)
        run("ip", "link", "set", peer, "netns", LAN)
        run("ip", "-n", LAN, "link", "set", peer, "master", "br0", "up")
        run("ip", "-n", self.name, "link", "set", veth, "name", "eth0")
        run("ip", "-n", self.name, "addr", "add", f"{self.address}/24", "dev", "eth0")
        run("ip", "-n", self.name, "link", "set", "eth0", "up")
        run("ip", "-n", self.name, "link", "set", "lo", "up")
        for path in (self.data_root, self.exec_root):
            path.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            process = subprocess.Popen(
                ["nsenter", f"--net={self.netns}", "dockerd", "--host", f"unix://{self.socket}",
                 "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                 "--pidfile", str(self.pidfile), "--cgroup-parent", self.name, "--storage-driver", "overlay2",
                 "--dns", HOST_ADDRESS],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"dockerd of {self.name} exited {process.returncode}: {self.log_tail()}")
            if self.docker("info", "--format", "{{.ID}}", check=False, timeout=30).returncode == 0:
                return
            time.sleep(1)
        raise RuntimeError(f"dockerd of {self.name} did not answer in 120 s: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        # Only the dockerd this node started: a recycled pid is left alone.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return pid if cmdline[0].endswith(b"dockerd") and self.socket.encode() in b" ".join(cmdline) else None

    def stray_processes(self) -> list[int]:
        """What a node that did not stop cleanly leaves: its containerd and shims (in its network
        namespace) and its containers' processes (in its cgroup parent)."""
        try:
            netns = os.stat(self.netns).st_ino
        except OSError:
            netns = None
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                in_netns = netns is not None and os.stat(entry / "ns" / "net").st_ino == netns
                in_cgroup = f"/{self.name}/" in (entry / "cgroup").read_text()
            except OSError:
                continue
            if in_netns or in_cgroup:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """SIGTERM to this node's dockerd (it stops its containers and containerd), SIGKILL after
        a minute; then whatever it left behind."""
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.pid():
                time.sleep(0.5)
            if self.pid():
                os.kill(pid, signal.SIGKILL)
                time.sleep(1)
        for stray in self.stray_processes():
            try:
                os.kill(stray, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def remove(self) -> None:
        self.stop()
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith((f"{self.data_root}/", f"{self.exec_root}/"))
                             or m in (str(self.data_root), str(self.exec_root), str(self.netns))),
                            key=len, reverse=True):
            run("umount", "-l", mount, check=False)
        run("ip", "netns", "del", self.name, check=False)
        for path in (self.data_root, self.exec_root):
            shutil.rmtree(path, ignore_errors=True)
        for path in (Path(self.socket), self.pidfile):
            path.unlink(missing_ok=True)
        # The cgroups of its containers (cgroup v1: one tree per controller), deepest first.
        for cgroup in Path("/sys/fs/cgroup").glob(f"*/{self.name}"):
            for folder in sorted([p for p in cgroup.rglob("*") if p.is_dir()] + [cgroup], key=lambda p: -len(p.parts)):
                try:
                    folder.rmdir()
                except OSError:
                    pass


class Swarm:
    """`count` nodes: node 1 the manager (and the data node), the others workers."""

    def __init__(self, count: int = 2):
        self.nodes = [Node(index) for index in range(1, count + 1)]
        self.resolver: NoNames | None = None

    @property
    def manager(self) -> Node:
        return self.nodes[0]

    def start(self) -> "Swarm":
        self.remove()  # what an earlier, killed run left
        run("ip", "netns", "add", LAN)
        run("ip", "-n", LAN, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", LAN, "link", "set", "br0", "up")
        run("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", "rxsw-l0")
        run("ip", "link", "set", "rxsw-l0", "netns", LAN)
        run("ip", "-n", LAN, "link", "set", "rxsw-l0", "master", "br0", "up")
        run("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", HOST_LINK)
        run("ip", "link", "set", HOST_LINK, "up")
        self.resolver = NoNames()
        self.resolver.start()
        for node in self.nodes:
            node.start()
        manager = self.manager.client()
        manager.swarm.init(advertise_addr=self.manager.address, listen_addr=f"{self.manager.address}:2377",
                           default_addr_pool=[ADDRESS_POOL], subnet_size=24)
        token = manager.swarm.attrs["JoinTokens"]["Worker"]
        for node in self.nodes[1:]:
            node.client().swarm.join(remote_addrs=[f"{self.manager.address}:2377"], join_token=token,
                                     advertise_addr=node.address, listen_addr=f"{node.address}:2377")
        deadline = time.monotonic() + 60
        while sum(n.attrs["Status"]["State"] == "ready" for n in manager.nodes.list()) < len(self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the nodes did not all get ready: {[n.attrs['Status'] for n in manager.nodes.list()]}")
            time.sleep(1)
        return self

    def node_of(self, hostname_or_id: str) -> Node:
        """The Node whose engine has this swarm node id."""
        for node in self.nodes:
            if node.client().info()["Swarm"]["NodeID"] == hostname_or_id:
                return node
        raise KeyError(hostname_or_id)

    def remove(self) -> None:
        for node in self.nodes:
            node.remove()
        if self.resolver:
            self.resolver.close()
        run("ip", "link", "del", HOST_LINK, check=False)
        run("ip", "netns", "del", LAN, check=False)

    def dump_logs(self) -> None:
        for node in self.nodes:
            print(f"===== dockerd of {node.name} =====\n{node.log_tail(40)}")


# ---- the stack on it ------------------------------------------------------------------------

STACK = "rasax"
# The images a stack without the Rasa servers runs (`images save`/`load` names).
IMAGES = ("project", "postgres", "rabbitmq", "redis", "nginx")
# Published on the data node only for the tests (the stack itself publishes nothing but nginx):
# the broker to publish Rasa's events to, PostgreSQL to check what was stored.
TEST_PORTS = {"rabbit": 5672, "db": 5432}


class SwarmStack:
    """An installation in `directory` deployed by `rasax-deploy swarm deploy` on `swarm`."""

    def __init__(self, swarm: Swarm, directory: Path, images: Path):
        self.swarm = swarm
        self.dir = directory
        self.images = images

    @property
    def manager(self) -> Node:
        return self.swarm.manager

    def deploy(self, *options: str) -> None:
        """Images into every node (saved once from this machine's engine), an installation, the stack."""
        from deploy.install import initialize
        from deploy.layout import Layout

        here = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}  # this machine's engine
        for step in (["build"], ["save", str(self.images)]):  # build: only what the tree changed
            result = subprocess.run([sys.executable, "-m", "cli", "images", *step, *IMAGES], cwd=ROOT, env=here,
                                    capture_output=True, text=True, timeout=3600)
            if result.returncode != 0:
                raise RuntimeError(f"rasax-deploy images {step[0]} failed: {result.stderr[-3000:]}")
        for node in self.swarm.nodes:
            node.rasax_deploy("images", "load", str(self.images))
        initialize(Layout(self.dir), "swarmtest")
        self.manager.rasax_deploy("swarm", "deploy", "--dir", str(self.dir), "--no-rasa", "--stack", STACK,
                                  "--timeout", "600", *options)

    def publish_servers(self) -> None:
        """The broker and PostgreSQL on the data node's address, for the tests' own clients."""
        for service, port in TEST_PORTS.items():
            self.manager.docker("service", "update", "--detach=false", "--publish-add",
                                f"mode=host,target={port},published={port}", f"{STACK}_{service}", timeout=600)

    def secret(self, name: str) -> str:
        return (self.dir / "credentials" / name).read_text().strip()

    def env(self) -> dict[str, str]:
        """The installation's .env with the servers at the data node's address (tests' clients)."""
        from deploy.layout import Layout, read_env

        return {**read_env(Layout(self.dir)), "RABBITMQ_HOST": self.manager.address, "DB_HOST": self.manager.address}

    def engine(self):
        from services.common.config import database_settings
        from services.common.db import create_engine

        return create_engine(database_settings(self.env()), application_name="rasax-swarm-test")

    def url(self, node: Node, path: str) -> str:
        return f"http://{node.address}:80{path}"

    def login(self, node: Node) -> str:
        import requests

        response = requests.post(self.url(node, "/api/auth"), json={"username": "admin",
                                                                    "password": self.secret("RASA_X_PASSWORD")},
                                 timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def service(self, name: str):
        return self.manager.client().services.get(f"{STACK}_{name}")

    def tasks_by_node(self, name: str) -> dict[str, int]:
        """Running tasks of a service per swarm node id."""
        counts: dict[str, int] = {}
        for task in self.service(name).tasks(filters={"desired-state": "running"}):
            if task["Status"]["State"] == "running":
                counts[task["NodeID"]] = counts.get(task["NodeID"], 0) + 1
        return counts

    def scale(self, name: str, replicas: int, timeout: float = 300) -> None:
        self.manager.docker("service", "scale", "--detach=false", f"{STACK}_{name}={replicas}", timeout=timeout)

    def dump_logs(self) -> None:
        self.swarm.dump_logs()
        for node in self.swarm.nodes:
            print(node.docker("service", "ls", check=False).stdout if node is self.manager else "")
            for container in node.client().containers.list(all=True):
                print(f"===== {node.name}: {container.name} ({container.status}) =====")
                print(container.logs(tail=40).decode(errors="replace"))
