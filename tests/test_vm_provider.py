"""The vm provider on real qemu guests (TCG here): the suite's limits as on netns, kernel-wide settings
that are the lab's own, memory, more than 20,000 descriptors in one process, cleanup after SIGKILL.

Marked ``vm``: CI runs them as a step of their own (`pytest tests -m vm`); they need the guest image
(`connlab image build --vm`, made by setup.sh --providers) and skip with that reason without it.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_connlab.errors import ProviderUnavailable
from pytest_connlab.lab.providers import get_provider
from pytest_connlab.lab.providers.qemu import accelerator
from pytest_connlab.lab.providers.vm import VM_DIR, boot_params, mac_of, nic_script
from pytest_connlab.lab.topology import TCP_HASH_KEY, TopologyRequest

from .labtools import REPO, host_sysctls, namespaces_of, results, run_with_topology
from .test_lab_suite import EXPECTED

vm = pytest.mark.vm


@pytest.fixture
def needs_vm():
    """Skip with the provider's own reason where qemu or the guest image is missing."""
    try:
        get_provider("vm").check()
    except ProviderUnavailable as exc:
        pytest.skip(str(exc))


def qemu_processes(lab_prefix: str) -> list[int]:
    """Pids of qemu processes whose command line names a guest of ``lab_prefix`` (a run id or a lab)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"qemu-system-x86_64") and any(lab_prefix.encode() in a for a in argv):
            found.append(int(entry.name))
    return found


VM_SUBSET = "time_wait or backlog or tcb"


@vm
@pytest.mark.usefixtures("needs_vm")
def test_time_wait_backlog_and_tcb_hash_on_vm_guests_observe_what_netns_observes(pytester):
    before = host_sysctls()
    out = pytester.path / "vm.json"
    result = pytester.runpytest_subprocess(str(REPO / "labs"), "--lab=win2003", "--lab-provider=vm",
                                           "-k", VM_SUBSET, f"--lab-json={out}", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=6, skipped=2)
    result.stdout.fnmatch_lines(["*on provider vm*qemu guests, kernel *"])
    # guest kernel 6.1 has no tcp_tw_reuse_delay (this machine's 6.18 has): skipped, naming the key
    result.stdout.fnmatch_lines(["SKIPPED*test_time_wait_state.py:*has no sysctl net.ipv4.tcp_tw_reuse_delay*"])
    run_id, rows = results(out)
    seen = {(r["test"].split("::")[-1].split("[")[0], r["profile"]): (r["observed"], r["ended_by"])
            for r in rows}
    assert seen == {key: EXPECTED[key] for key in seen}
    assert len(seen) == 6 and all(r["provider"] == "vm" for r in rows)
    # MaxHashTableSize 512: the server guest booted with thash_entries=512, its own kernel's one table
    tcb = next(r for r in rows if r["limit"] == "tcb_hash")
    assert tcb["detail"]["evidence"]["born_with"]["net.ipv4.tcp_ehash_entries"] == "512", tcb
    assert qemu_processes(run_id) == [] and namespaces_of(run_id) == []
    assert host_sysctls() == before


GUEST_TEST = """
import json
import pytest

SERVER = "import socket, time\\ns = socket.socket()\\ns.bind(('0.0.0.0', 8080))\\ns.listen(4096)\\n" \\
         "held = []\\nwhile True:\\n    held.append(s.accept()[0])\\n"

@pytest.mark.topology(clients=1, ips_per_client=3, memory="512M", client_memory="768M")
@pytest.mark.settings(sysctl={"fs.nr_open": 2000000, "net.netfilter.nf_conntrack_max": 4096},
                      rlimit={"nofile": 30000})
def test_guest(lab):
    server, client = lab.server, lab.clients[0]
    shown = client.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout.decode()
    assert all(f"{a}/" in shown for a in client.addresses), shown
    assert client.run(["hostname"]).stdout.decode().strip() == "client1"
    try:  # the session ends, as sshd's can in a guest out of memory ...
        client.run(["sh", "-c", "pkill -9 -x sshd; sleep 5"], timeout=20)
    except Exception:
        pass
    # ... and the next command opens a new one (the guest's init starts sshd again)
    assert client.run(["hostname"]).stdout.decode().strip() == "client1"
    assert client.host.reconnects == 1
    mem, cmem = (dict((line.split(":")[0], int(line.split()[1]))
                      for line in host.run(["cat", "/proc/meminfo"]).stdout.decode().splitlines())
                 for host in (server, client))
    assert 400 * 1024 < mem["MemTotal"] < 512 * 1024 < cmem["MemTotal"] < 768 * 1024, (mem, cmem)
    assert server.sysctls(["fs.nr_open", "net.netfilter.nf_conntrack_max"]) == {
        "fs.nr_open": "2000000", "net.netfilter.nf_conntrack_max": "4096"}
    uname = server.run(["uname", "-r"]).stdout.decode().strip()
    own = lab.server.start(["python3", "-c", SERVER], port=8080)
    held = lab.probe.hold(own, connections=25000, for_s=1, sources=list(client.addresses), deadline_s=600)
    pid = own.process.proc.pid  # the guest's pid of the program (the provider's process wrapper execs it)
    fds = server.run(["sh", "-c", f"ls /proc/{pid}/fd | wc -l"]).stdout.decode()
    limit = server.run(["sh", "-c", f"grep 'open files' /proc/{pid}/limits"])
    open("guest.json", "w").write(json.dumps({"uname": uname, "fds": int(fds), "limits": limit.stdout.decode(),
                                             "held": held.established, "ramp_s": held.ramp_s}))
    assert held.established == 25000, held.explain()
    assert int(fds) > 25000, fds
"""


@vm
@pytest.mark.usefixtures("needs_vm")
def test_guests_have_their_own_kernel_ram_kernel_wide_settings_and_descriptors(pytester):
    before = host_sysctls()
    host_nr_open = Path("/proc/sys/fs/nr_open").read_text()
    pytester.makepyfile(GUEST_TEST)
    result = pytester.runpytest_subprocess("--lab=linux-default", "--lab-provider=vm", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    seen = json.loads((pytester.path / "guest.json").read_text())
    assert seen["uname"] != os.uname().release  # the guest's own kernel (Debian's), not this machine's
    assert seen["fds"] > 20_000  # past this machine's hard limit of descriptors per process
    assert "30000" in seen["limits"]
    assert host_sysctls() == before and Path("/proc/sys/fs/nr_open").read_text() == host_nr_open


ROUTER_TEST = """
import pytest

@pytest.mark.topology(clients=1, router=True)
@pytest.mark.settings(sysctl={"net.netfilter.nf_conntrack_max": 600})
@pytest.mark.limit("router_table")
def test_router_kernel_table(lab):
    obs = lab.probe.router_table()
    table = obs.evidence["kernel_table"]
    print("ROUTER", obs.observed, obs.ended_by, table)
    assert obs.expected == 600 and obs.observed == 600, obs.explain()
    assert obs.ended_by == "ETIMEDOUT", obs.explain()
    assert table["conntrack_stats_drop"] > 0, obs.explain()
    assert any("nf_conntrack: table full, dropping packet" in line for line in table["kernel_log"]), obs.explain()
"""


@vm
@pytest.mark.usefixtures("needs_vm")
def test_a_router_guest_with_nf_conntrack_max_drops_new_connections_when_its_table_is_full(pytester):
    pytester.makepyfile(ROUTER_TEST)
    result = pytester.runpytest_subprocess("--lab=linux-default", "--lab-provider=vm", "-s", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ROUTER 600 ETIMEDOUT*"])


def test_kernel_wide_settings_skip_on_a_namespace_provider_with_the_reason(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.settings(sysctl={"net.netfilter.nf_conntrack_max": 600})
        def test_router(lab):
            pass
    """)
    result = pytester.runpytest_subprocess("--lab-provider=netns", "-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*sets net.netfilter.nf_conntrack_max: kernel-wide*share this machine's "
                                 "kernel*--lab-provider vm*"])


def memory_rows(pytester, name, *args):
    """The rows of one run of labs/test_memory.py on vm (a disturbed row is skipped there, with why)."""
    out = pytester.path / name
    result = pytester.runpytest_subprocess(str(REPO / "labs" / "test_memory.py"), "--lab-provider=vm",
                                           f"--lab-json={out}", "-p", "no:cacheprovider", *args)
    outcomes = result.parseoutcomes()
    assert not outcomes.get("failed") and not outcomes.get("errors"), result.stdout.str()[-3000:]
    return results(out)[1]


@vm
@pytest.mark.usefixtures("needs_vm")
def test_memory_limits_of_512_mb_and_1_gb_guests(pytester):
    rows = memory_rows(pytester, "memory.json")
    disturbed = [r["test"] for r in rows if r["verdict"] == "disturbed"]
    if disturbed:  # the emulator stalled a guest's NIC (said in the row): once more, on fresh guests
        again = memory_rows(pytester, "again.json", "-k", " or ".join(t.split("::")[-1].split("[")[0]
                                                                      for t in disturbed))
        rows = [r for r in rows if r["test"] not in disturbed] + again
    by_size = {r["detail"]["evidence"]["mem_total"]: r for r in rows}
    assert len(by_size) == 2 and all(r["verdict"] == "ok" for r in rows), [(r["test"], r["verdict"]) for r in rows]
    small, large = (by_size[k] for k in sorted(by_size))
    assert small["observed"] < large["observed"]  # more RAM holds more
    for row in (small, large):
        evidence = row["detail"]["evidence"]
        assert row["verdict"] == "ok" and evidence["kernel_bytes_per_connection"] > 1000
        assert evidence["rates"].startswith("measured on TCG") or accelerator() == "kvm"


WAITING_TEST = """
import time
from pathlib import Path

def test_waits(lab):
    Path("lab-name").write_text(lab.name)
    time.sleep(300)
"""


@vm
@pytest.mark.usefixtures("needs_vm")
def test_a_killed_vm_run_leaves_no_qemu_tap_or_namespace_after_connlab_clean(pytester):
    pytester.makepyfile(WAITING_TEST)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                             "--lab-provider=vm"], cwd=pytester.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = pytester.path / "lab-name"
    deadline = time.monotonic() + 240
    while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate(timeout=5)[0]
    lab = marker.read_text()
    run_id = lab.split("-")[1]
    assert len(qemu_processes(lab)) == 2 and (VM_DIR / lab / "server.pid").is_file()
    proc.kill()
    proc.communicate(timeout=30)
    time.sleep(1)
    assert qemu_processes(lab) == []  # qemu died with its controller (PDEATHSIG)
    assert namespaces_of(run_id)  # what the dead run made is still there ...
    cleaned = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "clean"], capture_output=True,
                             text=True, timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"run {run_id}: removed" in cleaned.stdout
    assert namespaces_of(run_id) == [] and not (VM_DIR / lab).exists()  # ... until the sweep
    assert not any(lab in name for name in os.listdir("/sys/class/net"))


def test_a_guest_finds_its_nics_by_mac_and_gets_the_topology_addresses():
    from ipaddress import IPv4Network

    from pytest_connlab.lab.addressing import SubnetAllocator
    from pytest_connlab.lab.topology import plan
    topology = plan(TopologyRequest(clients=1, ips_per_client=2, router=True),
                    SubnetAllocator(IPv4Network("198.18.0.0/20")))
    router = next(h for h in topology.hosts if h.role == "router")
    script = nic_script(router, 1, topology.segments)
    assert f"byname {mac_of(1, 0)} cl0" in script and f"byname {mac_of(1, 1)} cl1" in script
    assert "link set dev cl1 name eth1" in script
    assert all(f"addr add {a}/" in script for a in router.addresses)
    client = next(h for h in topology.hosts if h.role == "client")
    assert f"route add {client.routes[0][0]} via {client.routes[0][1]}" in nic_script(client, 2, topology.segments)


def test_a_guests_tcp_hash_is_set_on_its_kernel_command_line_and_nothing_else_gets_there():
    assert boot_params(((TCP_HASH_KEY, "512"),)) == ["thash_entries=512"]
    refused = [((("net.ipv4.tcp_max_tw_buckets", "5"),), "net.ipv4.tcp_max_tw_buckets"),
               (((TCP_HASH_KEY, "512 init=/bin/sh"),), "integer from 1"),
               (((TCP_HASH_KEY, "0"),), "integer from 1")]
    for birth, named in refused:
        with pytest.raises(ValueError, match=named):
            boot_params(birth)


@pytest.mark.parametrize("bad", ["lots", "0M", "100000G", "-1G", True, "1T"])
def test_a_bad_memory_size_in_the_topology_marker_is_a_usage_error(pytester, bad):
    result = run_with_topology(pytester, "memory", bad)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*@pytest.mark.topology: memory must be like \"512M\" or \"1G\"*"])


def test_this_machines_kvm_is_not_used_for_stock_guests():
    """/dev/kvm here is PVM (no vmx/svm): stock Debian kernels would crawl under it, so TCG is chosen."""
    flags = Path("/proc/cpuinfo").read_text()
    expected = "kvm" if os.path.exists("/dev/kvm") and (" vmx" in flags or " svm" in flags) \
        and "kvm_pvm" not in Path("/proc/modules").read_text() else "tcg"
    assert accelerator() == expected


def test_the_guest_image_hash_follows_every_input():
    from pytest_connlab.lab.providers.vmimage import PACKAGES, VmRecipe
    base = VmRecipe()
    assert base.kernel.startswith("linux-image-") and base.kernel_version
    assert VmRecipe().content_hash == base.content_hash
    assert VmRecipe(packages=(*PACKAGES, "tcpdump")).content_hash != base.content_hash
    assert VmRecipe(kernel=base.kernel, kernel_version=base.kernel_version + "+x").content_hash != base.content_hash
    assert base.folder.parent == Path("/var/cache/connlab/vm")


@pytest.mark.parametrize("bad", ["linux-image-6.1;rm -rf /", "../../etc", "linux-headers-6.1.0-57-amd64"])
def test_a_bad_guest_kernel_name_is_refused_naming_the_option(pytester, bad):
    pytester.makepyfile("def test_x(lab):\n    pass\n")
    result = pytester.runpytest_subprocess("--lab-provider=vm", f"--lab-vm-kernel={bad}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--lab-vm-kernel: * is not a Debian kernel package name*"])
    done = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "image", "build", "--vm", "--kernel", bad],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "is not a Debian kernel package name" in done.stderr, done.stderr


@vm
@pytest.mark.usefixtures("needs_vm")
def test_connlab_image_build_vm_finds_the_built_image_by_its_hash():
    done = subprocess.run([sys.executable, "-m", "pytest_connlab.cli", "image", "build", "--vm"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "already built" in done.stdout and "/var/cache/connlab/vm/" in done.stdout
