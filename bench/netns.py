"""Network namespaces for `make failover --partition`: each part of Flowhook on a host of its own.

Every part (Redis, the web service, the workers) gets a network namespace with one interface, wired
by a veth pair to a bridge that lives in a namespace of its own: the host's firewall never sees the
bridged traffic (with br_netfilter loaded it would, and may drop it). The kit itself reaches the
parts through one more veth pair from the host's namespace. Needs root (`ip netns`, `iptables`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from types import TracebackType


def tool(name: str) -> str:
    """The full path of a command the partitions need."""
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"the partition scenarios need {name} (Debian: apt-get install iproute2 iptables)")
    return found


def ip(*arguments: str) -> None:
    subprocess.run([tool("ip"), *arguments], check=True, capture_output=True)


class Network:
    """The namespaces and their wiring; removed again on exit, whatever happened.

    Args:
        parts: Names of the parts, one namespace each (e.g. "redis", "web", "workers").
    """

    def __init__(self, parts: list[str]) -> None:
        # Names carry this process's id, so that runs side by side never meet and leftovers of a
        # killed run are easy to tell (`ip netns list`).
        self.prefix = f"flowhook-{os.getpid()}"
        self.subnet = f"10.231.{os.getpid() % 256}"
        self.bridge = f"{self.prefix}-bridge"
        self.host_interface = f"fh{os.getpid()}"[:15]
        self.address = {part: f"{self.subnet}.{index}" for index, part in enumerate(parts, start=2)}
        self.created: list[str] = []

    def namespace(self, part: str) -> str:
        return f"{self.prefix}-{part}"

    def command(self, part: str) -> list[str]:
        """The prefix that runs a command inside ``part``'s namespace."""
        return [tool("ip"), "netns", "exec", self.namespace(part)]

    def __enter__(self) -> Network:
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def _create(self) -> None:
        self._add_namespace(self.bridge)
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        for part, address in self.address.items():
            namespace = self.namespace(part)
            self._add_namespace(namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", self.bridge, "link", "add", part, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            self._plug(part)
            ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")
        # The kit's own way in, from the host's namespace: it calls the web service and watches Redis.
        ip("-n", self.bridge, "link", "add", "host", "type", "veth", "peer", "name", self.host_interface, "netns", "1")
        self._plug("host")
        ip("addr", "add", f"{self.subnet}.1/24", "dev", self.host_interface)
        ip("link", "set", self.host_interface, "up")

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.created.append(name)

    def _plug(self, interface: str) -> None:
        ip("-n", self.bridge, "link", "set", interface, "master", "br0")
        ip("-n", self.bridge, "link", "set", interface, "up")

    def drop(self, between: str, and_: str, *, dropping: bool) -> None:
        """Drop (or stop dropping) every packet between two parts, silently, as a lost link does."""
        action = "-I" if dropping else "-D"
        peer = self.address[and_]
        for rule in (["INPUT", "-s", peer], ["OUTPUT", "-d", peer]):
            subprocess.run(
                [*self.command(between), tool("iptables"), action, rule[0], *rule[1:], "-j", "DROP"],
                check=True,
                capture_output=True,
            )

    def remove(self) -> None:
        """Delete the host's end of the wiring, then the namespaces with the rest of it.

        The host's end first, and by name: the kernel tears down a deleted namespace's devices in
        the background, so the next scenario of the same run (same names) met it still there.
        """
        if self.created:
            subprocess.run([tool("ip"), "link", "del", self.host_interface], check=False, capture_output=True)
        for name in reversed(self.created):
            subprocess.run([tool("ip"), "netns", "del", name], check=False, capture_output=True)
        self.created.clear()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()
