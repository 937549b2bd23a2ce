"""How a held load is spread over source IPs and processes (pure arithmetic)."""
import pytest

from pytest_connlab.probes.holdplan import fill_workers, plan_hold, ports_in_range


def test_a_million_over_32_ips_fits_each_port_range_and_each_process_budget():
    sources = [(f"client{h}", f"198.18.0.{h * 8 + i + 2}") for h in range(4) for i in range(8)]
    plan = plan_hold(1_000_000, sources, client_budget=19_936, server_budget=19_936)
    assert set(plan.per_source.values()) == {31_250}  # under the 64,512 ports of 1024-65535
    per_host = {h: sum(sum(w.values()) for w in ws) for h, ws in plan.clients.items()}
    assert per_host == {f"client{h}": 250_000 for h in range(4)}
    assert all(sum(w.values()) <= 19_936 for ws in plan.clients.values() for w in ws)
    assert plan.client_workers == 4 * 13
    assert plan.server_workers == 58  # 1.15 x 1M / 19,936: headroom for SO_REUSEPORT's hash
    assert "32 source IPs on 4 client hosts" in plan.describe()


def test_one_source_beyond_one_process_is_split_evenly():
    assert fill_workers({"198.18.0.2": 28_332}, 19_936) == [{"198.18.0.2": 14_166}, {"198.18.0.2": 14_166}]


def test_a_worker_may_take_several_sources_and_a_source_several_workers():
    workers = fill_workers({"a": 15, "b": 15, "c": 0}, 10)
    assert workers == [{"a": 10}, {"a": 5, "b": 5}, {"b": 10}]


def test_the_port_range_counts_both_ends():
    assert ports_in_range("32768 60999") == 28_232
    assert ports_in_range("1025 5000") == 3_976
    with pytest.raises(ValueError, match="ip_local_port_range"):
        ports_in_range("many")


def test_a_plan_needs_connections_and_sources():
    with pytest.raises(ValueError, match="at least 1"):
        plan_hold(0, [("c", "198.18.0.2")], 100, 100)
    with pytest.raises(ValueError, match="no client source"):
        plan_hold(10, [], 100, 100)
