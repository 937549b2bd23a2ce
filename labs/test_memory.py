"""Memory folklore: "50K+ connections on 4 GB", "1 MB per connection on 16 GB", "2M connections".
Measured in guests of a given size (the vm provider: a guest's RAM is the box's); elsewhere these
skip, since namespaces share this machine's memory.
"""
import pytest


def _check_ending(obs):
    ev = obs.evidence
    if obs.disturbed:  # the emulator stalled (a guest's NIC): no figure of the box's memory to check
        pytest.skip(f"disturbed: {obs.disturbed}")
    assert obs.observed > 1000, obs.explain()
    assert ev["kernel_bytes_per_connection"], obs.explain()
    # it ended by memory: an OOM kill or a panic the guest's console reports, or TCP aborts the kernel
    # counts (tcp_mem); never by the probe's bound, the deadline or client ports
    assert obs.ok and obs.ended_by in ("OOM kill", "kernel panic", "tcp_mem"), obs.explain()
    if obs.ended_by == "OOM kill":
        assert ev["console"]["oom_lines"], obs.explain()
    elif obs.ended_by == "kernel panic":
        assert ev["console"]["panic"], obs.explain()
    else:  # TCP aborts during the ramp, or the server's TCP memory at its tcp_mem hard limit when it ended
        server = ev["at_ramp_end"].get("server", {})
        at_limit = server.get("tcp_mem") and server["tcp_mem_pages"] >= server["tcp_mem"][2]
        assert ev["aborted_on_memory"] > 0 or ev["console"]["tcp_out_of_memory"] or at_limit, obs.explain()


@pytest.mark.topology(clients=2, ips_per_client=8, memory="512M", client_memory="1536M")
@pytest.mark.limit("memory_per_connection")
def test_idle_connections_a_512_mb_server_holds(lab):
    obs = lab.probe.memory_per_connection()
    _check_ending(obs)
    assert obs.evidence["mem_total"] < 512 * 2**20, obs.explain()


@pytest.mark.topology(clients=2, ips_per_client=8, memory="1G", client_memory="1536M")
@pytest.mark.limit("memory_per_connection")
def test_idle_connections_a_1_gb_server_holds(lab):
    obs = lab.probe.memory_per_connection()
    _check_ending(obs)
    assert 512 * 2**20 < obs.evidence["mem_total"] < 1024 * 2**20, obs.explain()
