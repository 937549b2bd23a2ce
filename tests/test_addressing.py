"""The 198.18.0.0/15 allocator: worker slices and subnets."""
import ipaddress

import pytest

from pytest_connlab.errors import AddressSpaceExhausted
from pytest_connlab.lab.addressing import LAB_RANGE, SubnetAllocator, worker_slice
from pytest_connlab.lab.topology import TopologyRequest, plan


@pytest.mark.parametrize("total", [1, 2, 3, 4, 8, 32])
def test_worker_slices_are_disjoint_and_inside_the_benchmark_range(total):
    slices = [worker_slice(i, total) for i in range(total)]
    for s in slices:
        assert s.subnet_of(LAB_RANGE)
    for a in range(total):
        for b in range(a + 1, total):
            assert not slices[a].overlaps(slices[b])


def test_too_many_workers_is_refused():
    with pytest.raises(ValueError):
        worker_slice(0, 64)


def test_allocator_gives_disjoint_subnets_and_takes_them_back():
    alloc = SubnetAllocator(ipaddress.ip_network("198.18.0.0/24"))
    a, b = alloc.allocate(10), alloc.allocate(10)
    assert not a.overlaps(b) and a.num_addresses >= 12
    alloc.release(a)
    assert alloc.allocate(10) == a


def test_allocator_says_when_the_slice_is_full():
    alloc = SubnetAllocator(ipaddress.ip_network("198.18.0.0/28"))
    alloc.allocate(10)
    with pytest.raises(AddressSpaceExhausted):
        alloc.allocate(10)


def test_plan_gives_every_client_its_ips_from_one_subnet():
    alloc = SubnetAllocator(worker_slice(1, 2))
    topo = plan(TopologyRequest(clients=3, ips_per_client=4), alloc)
    addresses = [a for h in topo.hosts for a in h.addresses]
    assert len(addresses) == len(set(addresses)) == 13
    assert all(ipaddress.ip_address(a) in topo.segments["lan"] for a in addresses)
    assert [h.name for h in topo.clients] == ["client1", "client2", "client3"]


@pytest.mark.parametrize("kwargs", [{"clients": 0}, {"clients": 65}, {"ips_per_client": "8"},
                                    {"clients": True}])
def test_a_bad_topology_request_is_refused(kwargs):
    with pytest.raises(ValueError):
        TopologyRequest(**kwargs)


def test_a_router_splits_clients_and_server_into_two_subnets():
    from ipaddress import IPv4Address, IPv4Network

    from pytest_connlab.lab.addressing import SubnetAllocator
    from pytest_connlab.lab.topology import TopologyRequest, plan
    topo = plan(TopologyRequest(clients=2, router=True), SubnetAllocator(IPv4Network("198.18.0.0/24")),
                {"server": {"net.ipv4.tcp_child_ehash_entries": "512"}})
    lan, wan = topo.segments["lan"], topo.segments["wan"]
    router = next(h for h in topo.hosts if h.role == "router")
    assert [n.segment for n in router.nics] == ["lan", "wan"]
    assert IPv4Address(topo.server.address) in wan
    assert all(IPv4Address(c.address) in lan for c in topo.clients)
    assert topo.server.routes == ((str(lan), router.nics[1].addresses[0]),)
    assert all(c.routes == ((str(wan), router.nics[0].addresses[0]),) for c in topo.clients)
    assert topo.server.birth == (("net.ipv4.tcp_child_ehash_entries", "512"),)
    assert ("net.ipv4.ip_forward", "1") in router.sysctls
