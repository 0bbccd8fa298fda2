"""A multi-host testbed in Linux network namespaces, built and torn down by the test itself.

Every host is a network namespace with one veth into a bridge that lives in a
"switch" namespace of its own, so nothing is added to the machine's own network
stack and parallel runs (unique namespace names) never meet. Addresses come from
10.231.X.0/24 and exist only inside these namespaces.

    lb       10.231.X.2    nginx or HAProxy, port 8080
    app1-3   10.231.X.11-13 `haven serve` on port 4000
    kv1      10.231.X.21   Valkey (the first primary) + sentinel 1
    kv2      10.231.X.22   Valkey (the first replica) + sentinel 2
    db       10.231.X.31   PostgreSQL (5432), PgBouncer (6432), sentinel 3
    client   10.231.X.100  the traffic generator (a thread of the test process)

A host is "cut off" by setting its switch port down: its packets are dropped
without a reset, as when a machine stops answering. The test process talks to
the hosts from a thread that has joined the client namespace (setns), so its
sockets live there too; processes start through `ip netns exec`, which execs
the command itself, so every recorded PID is the real process and is killed by it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from support_cluster import Spawned

T = TypeVar("T")
CLONE_NEWNET = 0x40000000

HOSTS = {
    "lb": 2,
    "app1": 11,
    "app2": 12,
    "app3": 13,
    "kv1": 21,
    "kv2": 22,
    "db": 31,
    "client": 100,
}

# tool -> the Debian package that ships it
TOOLS = {
    "ip": "iproute2",
    "setpriv": "util-linux",
    "pg_config": "postgresql",
}


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    for folder in ("/usr/sbin", "/sbin", "/usr/bin"):
        if found is None and os.access(f"{folder}/{tool}", os.X_OK):
            found = f"{folder}/{tool}"
    return found


def pg_bindir() -> Path | None:
    pg_config = which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    path = Path(out.stdout.strip())
    return path if (path / "initdb").exists() and (path / "postgres").exists() else None


def skip_reason(extra_tools: dict[str, str] | None = None) -> str | None:
    """Why the testbed cannot run here (naming the Debian package), or None."""
    if os.geteuid() != 0:
        return "the multi-host testbed creates network namespaces: run as root"
    for tool, package in {**TOOLS, **(extra_tools or {})}.items():
        if which(tool) is None:
            return f"{tool} not found: apt-get install {package}"
    if pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, postgres) not found: apt-get install postgresql"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' user to run initdb as: apt-get install postgresql"
    probe = f"hvprobe{os.getpid()}{secrets.token_hex(2)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"network namespaces are not allowed here (ip netns add: {made.stderr.strip()})"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


_libc = ctypes.CDLL(None, use_errno=True)


def run_in_netns(namespace: str, fn: Callable[[], T]) -> T:
    """fn() on a fresh thread that has joined `namespace`: every socket it opens lives there."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({namespace}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc

    # A daemon: if the test is interrupted mid-call, the process can still exit.
    thread = threading.Thread(target=target, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class NetBed:
    """The namespaces, the bridge, and every process started on a host."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.run = f"hv{os.getpid() % 100000}{secrets.token_hex(2)}"
        self.third = 1 + (os.getpid() + secrets.randbelow(1000)) % 250
        self.namespaces: list[str] = []
        self.children: list[Spawned] = []
        self.cut_hosts: set[str] = set()
        self.blackholes: list[tuple[str, str]] = []

    # -- naming -----------------------------------------------------------------------------
    def ns(self, host: str) -> str:
        return f"{self.run}-{host}"

    def ip(self, host: str) -> str:
        return f"10.231.{self.third}.{HOSTS[host]}"

    @property
    def subnet(self) -> str:
        return f"10.231.{self.third}.0/24"

    # -- network ----------------------------------------------------------------------------
    @staticmethod
    def sh(*args: str) -> None:
        done = subprocess.run(list(args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")

    def build(self) -> None:
        switch = self.ns("sw")
        self.sh("ip", "netns", "add", switch)
        self.namespaces.append(switch)
        self.sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        self.sh("ip", "-n", switch, "link", "set", "br0", "up")
        for host in HOSTS:
            ns = self.ns(host)
            self.sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            port = f"p-{host}"
            # Both ends are created inside the namespaces: nothing touches the host's stack.
            self.sh(
                "ip", "-n", switch, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", ns,
            )  # fmt: skip
            self.sh("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
            self.sh("ip", "-n", ns, "addr", "add", f"{self.ip(host)}/24", "dev", "eth0")
            self.sh("ip", "-n", ns, "link", "set", "eth0", "up")
            self.sh("ip", "-n", ns, "link", "set", "lo", "up")

    def cut(self, host: str) -> None:
        """The host stops answering: its switch port drops every packet, no RST."""
        self.sh("ip", "-n", self.ns("sw"), "link", "set", f"p-{host}", "down")
        self.cut_hosts.add(host)

    def heal(self, host: str) -> None:
        self.sh("ip", "-n", self.ns("sw"), "link", "set", f"p-{host}", "up")
        self.cut_hosts.discard(host)

    def blackhole(self, host: str, target: str) -> None:
        """`host` loses its route to `target` (packets to it are dropped on `host`)."""
        self.sh("ip", "-n", self.ns(host), "route", "add", "blackhole", f"{self.ip(target)}/32")
        self.blackholes.append((host, target))

    def unblackhole_all(self) -> None:
        for host, target in self.blackholes:
            self.sh("ip", "-n", self.ns(host), "route", "del", "blackhole", f"{self.ip(target)}/32")
        self.blackholes.clear()

    # -- processes --------------------------------------------------------------------------
    def spawn(
        self,
        host: str,
        args: Sequence[str],
        name: str,
        *,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> Spawned:
        prefix = ["ip", "netns", "exec", self.ns(host)]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        child = Spawned([*prefix, *args], env or dict(os.environ), self.tmp / f"{name}.log")
        self.children.append(child)
        return child

    def call(self, fn: Callable[[], T]) -> T:
        """fn() from the client host."""
        return run_in_netns(self.ns("client"), fn)

    def close(self) -> None:
        """Kill every process by PID, then delete every namespace (and with it every veth)."""
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.kill_tree()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        """Namespaces of this run still present (none after close())."""
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=False
        )
        return [
            line.split()[0]
            for line in listed.stdout.splitlines()
            if line.startswith(f"{self.run}-")
        ]
