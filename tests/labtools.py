"""Helpers for the integration tests: host snapshots and leftover checks."""
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST_KEYS = ("net/ipv4/ip_local_port_range", "net/core/somaxconn", "net/ipv4/tcp_tw_reuse",
             "net/ipv4/tcp_rfc1337", "net/ipv4/tcp_max_tw_buckets", "net/ipv4/tcp_syncookies")


def host_sysctls() -> dict[str, str]:
    """The host namespace's values of the keys labs set."""
    return {k: Path("/proc/sys", k).read_text().strip() for k in HOST_KEYS}


def namespaces_of(run_id: str) -> list[str]:
    netns = Path("/run/netns")
    return [p.name for p in netns.iterdir() if run_id in p.name] if netns.is_dir() else []


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def host_nft_ruleset() -> str:
    """The host namespace's nftables ruleset (labs load theirs inside lab namespaces only)."""
    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout


def results(path: Path) -> tuple[str, list[dict]]:
    data = json.loads(path.read_text())
    return data["run_id"], data["results"]


NARROW_PROFILE = """\
title: A service host with a narrow port range
os: linux
sources: {{guide: "{source}"}}
settings:
  net.ipv4.ip_local_port_range: {{value: "20000 {high}", source: guide}}
expect:
  ephemeral_ports: {{value: {value}, ended_by: EADDRNOTAVAIL, source: guide}}
"""


def narrow_profile(high: int = 20999, value: int = 1000, source: str = "our tuning guide") -> str:
    """A user's profile whose port range is 20000..``high`` and which expects ``value`` ports."""
    return NARROW_PROFILE.format(high=high, value=value, source=source)


def run_with_topology(pytester, argument: str, value: object):  # type: ignore[no-untyped-def]
    """Run one lab test whose ``@pytest.mark.topology`` has ``argument=value``, in a subprocess."""
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.topology({argument}={value!r})
        def test_sized(lab):
            pass
    """)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider")
