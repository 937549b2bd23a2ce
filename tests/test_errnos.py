"""errno <-> Winsock mapping (by meaning, LIMITS.md pitfall 6)."""
from pytest_connlab.profiles.errnos import is_known_error_name, linux_names_for, winsock_for


def test_port_exhaustion_maps_to_wsaenobufs():
    assert winsock_for("EADDRNOTAVAIL") == "WSAENOBUFS 10055"
    assert "EADDRNOTAVAIL" in linux_names_for("WSAENOBUFS")


def test_refused_and_timed_out():
    assert winsock_for("ECONNREFUSED") == "WSAECONNREFUSED 10061"
    assert winsock_for("ETIMEDOUT") == "WSAETIMEDOUT 10060"
    assert winsock_for("none") is None


def test_known_names():
    assert is_known_error_name("EMFILE") and is_known_error_name("WSAECONNREFUSED")
    assert not is_known_error_name("EOOPS")
