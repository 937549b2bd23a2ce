"""The one sysctl key grammar: what it lets through and what it refuses, and why."""
import pytest

from pytest_connlab.errors import SysctlKeyError
from pytest_connlab.profiles.limits import CATALOG
from pytest_connlab.profiles.profile import discover
from pytest_connlab.profiles.sysctlkeys import HOST_GLOBAL_SYSCTLS, check_key, check_lab_key


@pytest.mark.parametrize("key", ["net.core.somaxconn", "net.ipv4.conf.all.rp_filter", "net.ipv4.tcp_tw_reuse_delay",
                                 "net.ipv6.conf.veth-a.forwarding", "net.netfilter.nf_conntrack_tcp_timeout_syn_sent"])
def test_namespace_keys_pass(key):
    assert check_lab_key(key) == key


@pytest.mark.parametrize("key, why", [
    ("net./tmp/x", "the part '/tmp/x'"), ("net.core/../../x", "the part 'core/'"), ("net..core", "an empty part"),
    ("net.", "an empty part"), ("net", "one part"), ("kernel.domainname", "not under net."),
    ("fs.nr_open", "not under net."), ("net.Core.x", "the part 'Core'"), (7, "a string"),
])
def test_bad_keys_are_refused_with_the_reason(key, why):
    with pytest.raises(SysctlKeyError, match=__import__("re").escape(why)):
        check_lab_key(key)


def test_host_wide_keys_are_refused_on_a_namespace_but_well_formed():
    for key in HOST_GLOBAL_SYSCTLS:
        check_key(key)
        with pytest.raises(SysctlKeyError, match="host-wide"):
            check_lab_key(key)


def test_a_provider_with_its_own_kernel_may_widen_the_subtree():
    assert check_key("fs.nr_open", roots=("net", "fs")) == "fs.nr_open"


def test_every_key_the_emulation_map_and_the_shipped_profiles_set_follows_the_grammar():
    """The grammar is enforced where keys leave the controller (LabHost.start_sysctls, the netns
    birth path); the emulation map's own keys are checked here, for every shipped profile."""
    for profile in discover([]).values():
        knobs = profile.knobs()
        for values in (*knobs.sysctls.values(), *knobs.birth.values()):
            for key in values:
                check_lab_key(key)


def test_every_knob_the_catalog_names_follows_the_grammar():
    for knobs in (limit.knobs for limit in CATALOG.values()):
        for key in knobs:
            if not key.startswith("rlimit."):
                check_lab_key(key)
