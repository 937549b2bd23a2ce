"""The agent's nfnetlink reader of nft sets against nft's own listing, in a lab namespace."""
import json

import pytest

pytestmark = pytest.mark.usefixtures("needs_netns")

RULESET = b"""
table inet connlab_check {
    set v4 { type ipv4_addr; size 16; flags dynamic; }
    set v6 { type ipv6_addr; size 16; flags dynamic; }
    set none { type ipv4_addr; }
}
add element inet connlab_check v4 { 198.18.0.2, 198.18.0.9, 198.19.255.254 }
add element inet connlab_check v6 { 2001:db8::1, 2001:db8:0:1::42 }
"""
READ = ("import json, sys; from pytest_connlab.agent.nftsets import addresses; "
        "print(json.dumps({s: sorted(addresses('connlab_check', s)) for s in sys.argv[1:]}))")


def nft_listing(lab, set_name):
    """The set's elements as ``nft -j list set`` prints them."""
    out = lab.server.run(["nft", "-j", "list", "set", "inet", "connlab_check", set_name]).stdout
    elems = [item["set"].get("elem", []) for item in json.loads(out)["nftables"] if "set" in item]
    return sorted(elems[0])


def test_the_set_reader_sees_what_nft_lists_and_nothing_of_a_missing_set(lab):
    lab.server.run(["nft", "-f", "-"], input=RULESET)
    seen = json.loads(lab.server.run(["python3", "-c", READ, "v4", "v6", "none", "no_such_set"]).stdout)
    assert seen["v4"] == nft_listing(lab, "v4") == ["198.18.0.2", "198.18.0.9", "198.19.255.254"]
    assert seen["v6"] == nft_listing(lab, "v6") == ["2001:db8:0:1::42", "2001:db8::1"]
    assert seen["none"] == nft_listing(lab, "none") == []
    assert seen["no_such_set"] == []  # nft cannot list it either: the watcher sees no admitted computer
    lab.server.run(["nft", "delete", "element", "inet", "connlab_check", "v4", "{ 198.18.0.9 }"])
    again = json.loads(lab.server.run(["python3", "-c", READ, "v4"]).stdout)
    assert again["v4"] == nft_listing(lab, "v4") == ["198.18.0.2", "198.19.255.254"]
