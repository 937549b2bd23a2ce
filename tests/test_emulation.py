"""The emulation map: knobs, fidelity and reasons."""
from pytest_connlab.emulation import FIDELITIES, RULES, rule_for, worst
from pytest_connlab.profiles import discover


def test_every_rule_has_a_fidelity_and_a_reason():
    for rule in RULES.values():
        assert rule.fidelity in FIDELITIES
        assert len(rule.reason) > 40
        assert rule.low <= rule.high


def test_time_wait_delay_has_no_linux_knob():
    rule = rule_for("Tcpip.TcpTimedWaitDelay")
    assert rule is not None and rule.fidelity == "none"
    assert rule.knobs(240).sysctls == {} and rule.knobs(240).nft == {}


def test_inbound_cap_is_an_nft_set_of_that_size_on_the_server():
    knobs = rule_for("Product.InboundComputerCap").knobs(10)
    assert list(knobs.nft) == ["server"]
    assert "size 10;" in knobs.nft["server"][0]


def test_worst_fidelity_wins():
    assert worst(["exact", "approximate"]) == "approximate"
    assert worst(["exact", "none", "approximate"]) == "none"
    assert worst([]) == "exact"


def test_profile_fidelity_per_limit():
    xp = discover([])["winxp-sp2"]
    assert xp.fidelity_for("ephemeral_ports")[0] == "exact"
    assert xp.fidelity_for("listen_backlog")[0] == "approximate"
    assert discover([])["linux-default"].fidelity_for("listen_backlog")[0] == "exact"
