"""The netns provider's bring-up: namespaces made by threads, one rtnetlink batch per namespace."""
import json
import os
import resource
import subprocess
import sys

import pytest

from pytest_connlab.lab.addressing import SubnetAllocator, worker_slice
from pytest_connlab.lab.names import LabName, new_run_id
from pytest_connlab.lab.providers import nsexec, nsthread, rtnl
from pytest_connlab.lab.providers.netns import BRIDGE_INDEX, NIC_INDEX, NetnsProvider, lab_namespaces
from pytest_connlab.lab.topology import TopologyRequest, plan

from .labtools import run_with_topology


def ip_json(ns: str, *args: str) -> list[dict]:
    return json.loads(subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, check=True).stdout)


@pytest.fixture
def lab_name():
    name = LabName(new_run_id(), "bringup", 1)
    yield name
    NetnsProvider().remove(name)


def test_a_lab_is_wired_with_fixed_indexes_and_born_with_its_sysctls_without_a_child_process(lab_name):
    birth = {"client": {"net.ipv4.tcp_child_ehash_entries": "4096"}}
    topology = plan(TopologyRequest(clients=2, ips_per_client=3, router=True), SubnetAllocator(worker_slice(0, 1)),
                    birth)
    own_ns = os.stat("/proc/thread-self/ns/net").st_ino
    children_before = set(os.listdir(f"/proc/{os.getpid()}/task"))
    hosts = NetnsProvider().realise(topology, str(lab_name))
    assert os.stat("/proc/thread-self/ns/net").st_ino == own_ns  # this thread never left
    assert set(os.listdir(f"/proc/{os.getpid()}/task")) <= children_before  # the helper threads ended
    by_name = {h.spec.name: h for h in hosts}
    links = {link["ifname"]: link for link in ip_json(f"{lab_name}-lan", "link")}
    assert links["br0"]["ifindex"] == BRIDGE_INDEX and "UP" in links["br0"]["flags"]
    ports = [link for link in links.values() if link.get("master") == "br0"]
    assert len(ports) == 3 and all("UP" in p["flags"] for p in ports)  # router eth0 and two clients
    router = {a["ifname"]: a for a in ip_json(by_name["router"].ns_name, "addr")}
    assert router["eth0"]["ifindex"] == NIC_INDEX and router["eth1"]["ifindex"] == NIC_INDEX + 1
    client = {a["ifname"]: a for a in ip_json(by_name["client2"].ns_name, "addr")}
    assert [a["local"] for a in client["eth0"]["addr_info"] if a["family"] == "inet"] == \
        list(by_name["client2"].spec.nics[0].addresses)
    assert "UP" in client["lo"]["flags"]
    routes = ip_json(by_name["client1"].ns_name, "route")
    assert {"dst": str(topology.segments["wan"]), "gateway": by_name["router"].spec.nics[0].addresses[0]} \
        .items() <= next(r for r in routes if r.get("gateway")).items()
    assert by_name["client1"].birth_report["net.ipv4.tcp_ehash_entries"] == "4096"
    assert by_name["server"].birth_report == {}
    ping = subprocess.run(["ip", "netns", "exec", by_name["client1"].ns_name, "ping", "-c1", "-W2",
                           by_name["router"].spec.nics[0].addresses[0]], capture_output=True, text=True)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    NetnsProvider().destroy(hosts)
    assert lab_name not in lab_namespaces()


def test_a_refused_request_names_itself_and_the_namespace(lab_name):
    name = lab_name.resource("lan")
    nsthread.create(name)
    fd = os.open(nsexec.NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        batch = rtnl.Batch(name)
        batch.bridge(BRIDGE_INDEX, "br0")
        batch.address(BRIDGE_INDEX, "198.18.0.1", 24)
        batch.address(BRIDGE_INDEX, "198.18.0.1", 24)
        with pytest.raises(RuntimeError, match=rf"{name}: netlink address 198.18.0.1/24: File exists"):
            batch.send(fd)
        addresses = ip_json(name, "addr", "show", "br0")[0]["addr_info"]
        assert [a["local"] for a in addresses if a["family"] == "inet"] == ["198.18.0.1"]
    finally:
        os.close(fd)


def test_a_name_that_exists_is_not_made_twice(lab_name):
    name = lab_name.resource("lan")
    nsthread.create(name)
    before = os.stat(nsexec.NETNS_DIR / name).st_ino
    with pytest.raises(FileExistsError):
        nsthread.create(name)
    assert os.stat(nsexec.NETNS_DIR / name).st_ino == before  # the first is still mounted there


def test_one_teardown_kills_what_runs_in_every_namespace_of_the_lab(lab_name):
    topology = plan(TopologyRequest(clients=2), SubnetAllocator(worker_slice(0, 1)))
    hosts = NetnsProvider().realise(topology, str(lab_name))
    sleepers = [h.popen(["sleep", "60"]) for h in hosts]
    NetnsProvider().destroy(hosts)
    assert [p.wait(timeout=10) for p in sleepers] == [-9] * len(hosts)
    assert lab_name not in lab_namespaces()


def test_a_scale_lab_gives_each_namespace_a_tcp_hash_of_its_own_sized_for_its_connections(pytester):
    pytester.makepyfile("""
        import pytest

        KEY = "net.ipv4.tcp_ehash_entries"

        @pytest.mark.topology(clients=2, connections=100_000)
        def test_sized(lab):
            assert lab.server.sysctls([KEY])[KEY] == "131072"  # the server holds all of them
            assert [c.sysctls([KEY])[KEY] for c in lab.clients] == ["65536", "65536"]  # half each

        def test_shared(lab):
            assert int(lab.server.sysctls([KEY])[KEY]) < 0  # negative: the machine's table, shared
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("bad", [0, -5, "many", True, 10**8])
def test_a_bad_connection_count_in_the_topology_marker_is_a_usage_error(pytester, bad):
    result = run_with_topology(pytester, "connections", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*@pytest.mark.topology: connections must be an integer from 1 to 10,000,000*"])


def test_ip_netns_add_while_a_lab_stands_leaves_its_teardown_whole(lab_name):
    """/run/netns is a shared mount point of its own, as iproute2 makes it; were it a plain folder,
    `ip netns add` would bind it onto itself with the lab's namespaces in it, and their names could
    no longer be removed (EBUSY), leaving the namespaces behind."""
    topology = plan(TopologyRequest(clients=1), SubnetAllocator(worker_slice(0, 1)))
    NetnsProvider().realise(topology, str(lab_name))
    mount = subprocess.run(["findmnt", "-n", "-o", "PROPAGATION", str(nsexec.NETNS_DIR)],
                           capture_output=True, text=True)
    assert mount.stdout.split() == ["shared"], mount
    other = f"iproute2-{lab_name.run}"  # not a lab name: no sweep would touch it
    subprocess.run(["ip", "netns", "add", other], check=True)
    try:
        assert NetnsProvider().remove(lab_name)
        assert lab_namespaces().get(lab_name, []) == []
        assert not any(name.startswith(str(lab_name)) for name in os.listdir(nsexec.NETNS_DIR))
    finally:
        subprocess.run(["ip", "netns", "del", other], check=True)


def _children() -> set[int]:
    """Pids of this process's child processes, now."""
    found = set()
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid()):
                found.add(int(entry))
        except OSError:
            continue
    return found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_one_shot_reads_and_sysctl_writes_of_a_netns_host_run_inside_it_with_no_process(lab_name):
    from pytest_connlab.lab.labhost import LabHost
    hosts = NetnsProvider().realise(plan(TopologyRequest(clients=1), SubnetAllocator(worker_slice(0, 1))),
                                    str(lab_name))
    server = LabHost(hosts[0], [])
    listener = server.popen([sys.executable, "-c", "import socket, time\ns = socket.socket()\n"
                             "s.bind(('0.0.0.0', 7777))\ns.listen()\nprint(flush=True)\ntime.sleep(30)"],
                            stdout=subprocess.PIPE)
    try:
        listener.stdout.readline()
        host_value = open("/proc/sys/net/ipv4/tcp_fin_timeout").read()
        before, reaped = _children(), _children_cpu()
        previous = server.set_sysctls({"net.ipv4.tcp_fin_timeout": "17"})
        values = server.sysctls(["net.ipv4.tcp_fin_timeout", "net.no.such_key"])
        seen = server.observe(7777)
        reading = server.pressure()
        # no agent process was started for any of them: none is running, and none ended (a Python start
        # costs tens of ms of CPU, which the children's account would show once it was reaped)
        assert _children() == before and _children_cpu() == reaped
    finally:
        listener.kill()
        listener.wait()
    assert previous == {"net.ipv4.tcp_fin_timeout": host_value.strip()}
    assert values == {"net.ipv4.tcp_fin_timeout": "17", "net.no.such_key": None}
    inside = subprocess.run(["ip", "netns", "exec", hosts[0].ns_name, "sysctl", "-n", "net.ipv4.tcp_fin_timeout"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert inside == "17" and open("/proc/sys/net/ipv4/tcp_fin_timeout").read() == host_value
    assert seen["sockets"]["local_port"] == {"LISTEN": 1}  # the namespace's listener, not this machine's sockets
    assert reading["event"] == "pressure" and "TcpActiveOpens" in reading["counters"]
