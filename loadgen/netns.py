"""Several hosts on one machine: Linux network namespaces linked by a bridge, made and removed
with iproute2 (``ip netns``). Standard library only; needs root.

One run's network is a "switch" namespace holding a bridge, one namespace per host with an
``eth0`` on that bridge (and its own ``lo``), and a veth from this machine's own namespace into
the switch, so the process that made the network reaches every host too. The bridge lives in a
namespace of its own because a fresh namespace has no packet filter: on this machine's own
bridge, a firewall's FORWARD policy (br_netfilter, as Docker sets it up) could drop the traffic
between the hosts. Addresses are one /24 of 10.213.0.0/16 that no address of this machine's
namespace is in yet, so two runs at once (a test and a bench) do not meet.

Every name carries the making process's id (``zph<pid>-<host>``, at most 15 characters, the
kernel's limit for an interface): ``remove_leftovers`` removes what a killed run left behind,
and only that: a namespace whose maker still runs is another run's.

Cutting a host's link (``cut``) takes the switch's port down, as a cable pulled at the switch:
the host and its peers are not told; packets just stop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

PREFIX = "zph"
SUBNETS = ipaddress.ip_network("10.213.0.0/16")
SWITCH = "sw"
NAME = re.compile(rf"^{PREFIX}(\d+)-(\w+)$")
HOST_NAME = re.compile(r"^[a-z0-9]{1,4}$")  # zph + 7 pid digits + '-' + 4 = 15 characters
IP = shutil.which("ip") or "/usr/sbin/ip"


class NetnsUnavailable(Exception):
    """Namespaces cannot be made here (not root, no iproute2, a sandbox that forbids them)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None: tried for real (make one, bring its ``lo``
    up, run a command inside, remove it), as sandboxes differ in what they allow."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); CI runs as root"
    if not os.path.exists(IP):
        return "iproute2's ip command is missing (Debian's iproute2 package)"
    probe = f"{PREFIX}{os.getpid()}-prb"
    try:
        ip("netns", "add", probe)
        ip("-n", probe, "link", "set", "lo", "up")
        inside = subprocess.run(
            [IP, "netns", "exec", probe, "true"], capture_output=True, text=True, check=False
        )
        if inside.returncode != 0:
            return f"ip netns exec is refused here: {inside.stderr.strip()}"
    except RuntimeError as error:
        return f"network namespaces are refused here: {error}"
    finally:
        ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespaces() -> list[str]:
    listed = ip("netns", "list", check=False).stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip()]


def pids_in(namespace: str) -> list[int]:
    """Every process whose network namespace this is (``ip netns pids``)."""
    out = ip("netns", "pids", namespace, check=False).stdout.split()
    return [int(pid) for pid in out if pid.isdigit()]


def _kill_and_delete(namespace: str) -> None:
    for _ in range(50):
        pids = pids_in(namespace)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    ip("netns", "del", namespace, check=False)


def remove_leftovers() -> list[str]:
    """Remove the namespaces (with their processes and links) of runs whose process is gone;
    returns their names."""
    removed = []
    for namespace in namespaces():
        match = NAME.match(namespace)
        if match and int(match[1]) != os.getpid() and not _alive(int(match[1])):
            _kill_and_delete(namespace)
            removed.append(namespace)
    return removed


def _free_subnet() -> ipaddress.IPv4Network:
    taken = set()
    for line in ip("-4", "-o", "addr", "show", check=False).stdout.splitlines():
        found = re.search(r"inet (\S+)", line)
        if found:
            taken.add(ipaddress.ip_interface(found[1]).network)
    for subnet in SUBNETS.subnets(new_prefix=24):
        if subnet.network_address.packed[2] == 0:
            continue  # 10.213.0.0/24 is the example in the docs; leave it to people
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {SUBNETS}")


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    port: str  # the bridge's port for this host, in the switch namespace

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host's namespace."""
        return [IP, "netns", "exec", self.namespace, *args]


@dataclass
class Network:
    """A private network: ``hosts`` by name, each at ``address``; this machine at ``gateway``."""

    hosts: dict[str, Host] = field(default_factory=dict)
    subnet: ipaddress.IPv4Network | None = None
    gateway: str = ""
    switch: str = ""
    root_link: str = ""

    @classmethod
    def make(cls, names: list[str]) -> Network:
        """The namespaces, the bridge and the links, every ``lo`` up; removed again (all of it)
        if any step fails."""
        remove_leftovers()
        for name in names:
            if not HOST_NAME.match(name) or name == SWITCH:
                raise ValueError(f"host name {name!r}: 1-4 lower-case letters or digits")
        tag = f"{PREFIX}{os.getpid()}"
        network = cls(switch=f"{tag}-{SWITCH}", root_link=f"{tag}-root")
        try:
            network._build(tag, names)
        except BaseException:
            network.remove()
            raise
        return network

    def _build(self, tag: str, names: list[str]) -> None:
        self.subnet = _free_subnet()
        addresses = self.subnet.hosts()
        self.gateway = str(next(addresses))
        sw = self.switch
        ip("netns", "add", sw)
        ip("-n", sw, "link", "set", "lo", "up")
        ip("-n", sw, "link", "add", "br0", "type", "bridge")
        ip("-n", sw, "link", "set", "br0", "up")
        # This machine's own leg: its end here, the other on the bridge.
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", "root", "netns", sw)
        ip("-n", sw, "link", "set", "root", "master", "br0", "up")
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        for index, name in enumerate(names):
            namespace = f"{tag}-{name}"
            # Addresses from .10 on: .1 is this machine, the gap keeps them easy to tell.
            address = str(self.subnet.network_address + 10 + index)
            port = f"p-{name}"
            ip("netns", "add", namespace)
            self.hosts[name] = Host(name, namespace, address, port)
            ip("-n", namespace, "link", "set", "lo", "up")
            ip("-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0")
            ip("-n", sw, "link", "set", "eth0", "netns", namespace)
            ip("-n", sw, "link", "set", port, "master", "br0", "up")
            ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
            ip("-n", namespace, "link", "set", "eth0", "up")

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def cut(self, name: str) -> None:
        """Pull the host's cable at the switch: nobody is told, packets just stop."""
        ip("-n", self.switch, "link", "set", self.hosts[name].port, "down")

    def mend(self, name: str) -> None:
        ip("-n", self.switch, "link", "set", self.hosts[name].port, "up")

    def kill(self, name: str) -> list[int]:
        """SIGKILL every process of the host (a power cut); returns their ids."""
        killed = []
        for _ in range(20):
            pids = pids_in(self.hosts[name].namespace)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)
        return sorted(set(killed))

    def remove(self) -> None:
        """Every namespace of this network and every process still in one; the veths go with
        their namespaces (this machine's leg with the switch)."""
        for host in self.hosts.values():
            _kill_and_delete(host.namespace)
        if self.switch:
            _kill_and_delete(self.switch)
        if self.root_link:
            ip("link", "del", self.root_link, check=False)
