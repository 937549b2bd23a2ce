"""The emulation map: knobs, fidelity and reasons."""
from pytest_connlab.profiles.emulation import (
    CONNECTION_CAP,
    FIDELITIES,
    HALF_OPEN_OUTBOUND,
    HTTP_403_9_PAST,
    INBOUND_COMPUTERS,
    REFUSE_ON_FULL_BACKLOG,
    RULES,
    rule_for,
    worst,
)
from pytest_connlab.profiles.profile import discover


def test_every_rule_has_a_fidelity_and_a_reason():
    for rule in RULES.values():
        assert rule.fidelity in FIDELITIES
        assert len(rule.reason) > 40
        assert rule.low <= rule.high


def test_time_wait_delay_has_no_linux_knob():
    rule = rule_for("Tcpip.TcpTimedWaitDelay")
    assert rule is not None and rule.fidelity == "none"
    assert rule.knobs(240, {}).sysctls == {} and rule.knobs(240, {}).nft == {}


def test_inbound_cap_is_an_nft_set_of_that_size_on_the_server():
    knobs = rule_for("Product.InboundComputerCap").knobs(10, {})
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


def test_dynamic_port_range_is_start_and_count():
    profile = discover([])["vista-sp2"]
    assert profile.knobs().sysctls["all"]["net.ipv4.ip_local_port_range"] == "49152 65535"


def test_lab_wide_emulations_run_watchers_and_agent_played_ones_are_only_recorded():
    knobs = discover([])["winxp-sp2"].knobs()
    assert knobs.emulated == {REFUSE_ON_FULL_BACKLOG: 1, HALF_OPEN_OUTBOUND: 10, HTTP_403_9_PAST: 10,
                              INBOUND_COMPUTERS: 10}
    assert knobs.sysctls["server"]["net.ipv4.tcp_abort_on_overflow"] == "1"
    half_open = ("half-open-outbound", "--cap", "10", "--give-up", "21.0")
    assert half_open in knobs.agents["client"] and half_open in knobs.agents["server"]
    assert [a[0] for a in knobs.agents["server"]] == ["refuse-on-full", "inbound-computers", "half-open-outbound"]
    assert rule_for("IIS.MaxConnections").applied_by == "agent"


def test_rate_limiting_turns_the_cap_of_ten_on_only_when_one():
    rule = rule_for("Tcpip.EnableConnectionRateLimiting")
    assert rule.knobs(0, {}).emulated == {}
    assert rule.knobs(1, {}).emulated == {HALF_OPEN_OUTBOUND: 10}
    assert rule.knobs(0, {}).agents == {}


def test_keepalive_milliseconds_become_whole_seconds():
    knobs = discover([])["win2003"].knobs()
    assert knobs.sysctls["all"]["net.ipv4.tcp_keepalive_time"] == "7200"
    assert knobs.sysctls["all"]["net.ipv4.tcp_keepalive_intvl"] == "1"
    assert knobs.sysctls["all"]["net.ipv4.tcp_keepalive_probes"] == "5"


def test_tcb_hash_size_is_a_birth_sysctl_of_the_server():
    assert discover([])["win2003"].knobs().birth == {"server": {"net.ipv4.tcp_child_ehash_entries": "512"}}


def test_connection_cap_of_the_default_is_no_rule_at_all():
    rule = rule_for("Tcpip.TcpNumConnections")
    assert rule.knobs(0xFFFFFE, {}).nft == {} and rule.knobs(0xFFFFFE, {}).emulated == {}
    assert "ct count over 100 " in rule.knobs(100, {}).nft["server"][0]
    assert rule.knobs(100, {}).emulated == {CONNECTION_CAP: 100}


def test_syn_queue_cap_follows_the_kernel():
    from pytest_connlab.probes.syn_backlog import syn_queue_cap
    assert syn_queue_cap(10, 4096, 4096, 1) == 11
    assert syn_queue_cap(4096, 4096, 128, 0) == 97
    assert syn_queue_cap(4096, 4096, 16, 0) == 13
    assert syn_queue_cap(128, 4096, 128, 2) == 0


def test_limits_the_agent_plays_say_so_and_are_never_exact():
    for profile in discover([]).values():
        for limit in ("http_connection_cap", "thread_pool", "per_server_cap"):
            fidelity, reason = profile.fidelity_for(limit)
            assert fidelity == "approximate" and reason.startswith("emulated by the agent's"), (profile.name, limit)
            assert "kernel's behaviour" not in reason
