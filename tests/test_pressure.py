"""Host pressure: the kernel-wide readings that mark a probe's figure as disturbed."""
from pytest_connlab.agent.observe import pressure as agent_pressure
from pytest_connlab.lab.pressure import Pressure, disturbance


def reading(host="client1", orphans=8, max_orphans=131_072, mem=400, tcp_mem=(287_889, 383_855, 575_778),
            available=20 << 30, total=24 << 30, **counters):
    seen = {"pressure": {"orphans": orphans, "max_orphans": max_orphans, "tcp_mem_pages": mem,
                         "tcp_mem": list(tcp_mem), "mem_available": available, "mem_total": total},
            "counters": {"TcpExtTCPAbortOnMemory": 0, "TcpExtTCPMemoryPressures": 0, **counters}}
    return Pressure.of(host, seen)


def test_a_quiet_host_disturbs_nothing():
    assert disturbance([reading()], [reading()]) == ""


def test_orphans_past_a_quarter_of_the_limit_disturb_with_the_numbers():
    why = disturbance([reading(orphans=122_910)], [reading()])
    assert why.startswith("before the probe the host holds 122,910 orphaned TCP sockets")
    assert "tcp_max_orphans 131,072" in why and "from 32,768" in why
    assert disturbance([reading(orphans=32_768)], [reading()]) == ""  # at the threshold: not yet


def test_aborts_on_memory_during_the_probe_disturb_and_name_the_host():
    why = disturbance([reading(TcpExtTCPAbortOnMemory=5)], [reading(TcpExtTCPAbortOnMemory=73)])
    assert why == "TcpExtTCPAbortOnMemory +68 on client1 during the probe"


def test_tcp_memory_pressure_and_low_memory_disturb():
    assert "pressure threshold 383,855" in disturbance([reading()], [reading(mem=400_000)])
    assert "MiB available" in disturbance([reading(available=1 << 30)], [reading()])


def test_thresholds_a_namespace_cannot_see_come_from_this_machine():
    seen = {"pressure": {"orphans": 1, "max_orphans": None, "tcp_mem": None}, "counters": {}}
    p = Pressure.of("server", seen)
    local = agent_pressure()  # this process runs in the initial namespace
    assert p.max_orphans == local["max_orphans"] and p.tcp_mem_pressure == local["tcp_mem"][1]
