"""connection_cap, http_connection_cap and router_table: caps on live connections.

connection_cap: one client opens and holds connections until the server side
refuses one (Windows TcpNumConnections, emulated by nft 'ct count').
http_connection_cap: clients each hold a kept-alive HTTP connection; the
server answers 200 up to its cap and then 403.9 (IIS 5.1 on XP) or 503 (HTTP.SYS).
router_table: clients reach the server through a router whose connection table
holds a fixed number of connections; the next SYN is dropped there, and the
router's own counters say so.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import LabSetupError
from ..report.observation import NO_ERROR, Observation
from .common import expectation, http_clients, nft_counter, observation, pin_measuring_server, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost
    from ..lab.target import Target

NO_CAP_BOUND = 200  # connections tried when the lab's settings imply no cap
MAX_BOUND = 19_000  # one agent process, under the 20,000 descriptor limit


def _hold(client: LabHost, target: Target, count: int, timeout: float, extra: int = 2) -> dict[str, Any]:
    proc = client.agent("open", "--target", target.endpoint, "--sources", ",".join(client.addresses),
                        "--count", str(count), "--timeout", str(timeout), "--deadline", "120",
                        "--extra", str(extra), "--hold", "300")
    return proc.expect("opened", timeout=timeout * (extra + 2) + 150)


def _first_error(opened: dict[str, Any]) -> str:
    errors = opened["errors"]
    return str(errors[0]["name"]) if errors else NO_ERROR


def connection_cap(lab: Lab, connect_timeout: float = 2.0) -> Observation:
    """Open and hold connections from one client until one is refused."""
    cap = lab.profile.value_of("Tcpip.TcpNumConnections")
    capped = isinstance(cap, int) and cap < 1_000_000
    exp = expectation(lab, "connection_cap",
                      (int(cap) if capped else None,  # type: ignore[arg-type]
                       f"Tcpip.TcpNumConnections {cap}" if cap else "no connection cap in this profile's settings"),
                      lab_endings=("ECONNREFUSED",) if capped else ())
    bound = min(MAX_BOUND, int(cap) + 16 if capped else NO_CAP_BOUND)  # type: ignore[arg-type]
    pin_measuring_server(lab)
    server = start_agent_server(lab, "hold")
    start = time.monotonic()
    opened = _hold(lab.clients[0], server, bound, connect_timeout)
    duration = time.monotonic() - start
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    server.stop()
    evidence = {"server_established": seen.get("ESTABLISHED", 0),
                "next_attempts": [e["name"] for e in opened["extra_errors"]],  # type: ignore[attr-defined]
                "next_attempts_completed": opened["extra_established"]}
    return observation(lab, "connection_cap", exp, observed=int(opened["established"]),  # type: ignore[call-overload]
                       ended_by=_first_error(opened), bound=bound, duration_s=duration,
                       states={"server": seen}, evidence=evidence)


def _http_cap(lab: Lab) -> tuple[int | None, str, str]:
    for key, status in (("HTTP.MaxConnections", "503"), ("IIS.MaxConnections", "403.9")):
        if key in lab.scoped:
            return lab.scoped[key], status, key
    return None, "503", ""


def http_connection_cap(lab: Lab, clients: int = 40, timeout: float = 3.0) -> Observation:
    """``clients`` kept-alive HTTP connections at once; count the ones served with 200."""
    cap, status, key = _http_cap(lab)
    exp = expectation(lab, "http_connection_cap",
                      (cap, f"{key} {cap}" if cap else "no HTTP connection cap in this profile's settings"),
                      lab_endings=(f"HTTP {status}",) if cap else ())
    pin_measuring_server(lab)
    server = start_agent_server(lab, "http", extra=("--max-conns", str(cap or 0), "--over-status", status))
    start = time.monotonic()
    answers = http_clients(lab, server.endpoint, clients, timeout)
    duration = time.monotonic() - start
    stats = server.stop()
    statuses = answers["statuses"]
    errors = [s for s in answers["order"] if s != "200"]
    ended = f"HTTP {errors[0]}" if errors and errors[0][0].isdigit() else (errors[0] if errors else NO_ERROR)
    evidence = {"statuses": statuses, "server_served": stats.get("served"),
                "server_over_cap": stats.get("over_cap"), "server_peak_open": stats.get("peak_open")}
    return observation(lab, "http_connection_cap", exp, observed=int(statuses.get("200", 0)),
                       ended_by=ended, bound=clients, duration_s=duration, evidence=evidence)


def router_table(lab: Lab, connect_timeout: float = 1.5) -> Observation:
    """Hold connections through the router until its table is full; read the router's counters."""
    if lab.router is None:
        raise LabSetupError("router_table needs a router: @pytest.mark.topology(router=True)")
    size = lab.profile.value_of("Router.ConnectionTableSize")
    exp = expectation(lab, "router_table",
                      (int(size) if size else None,
                       f"Router.ConnectionTableSize {size}" if size else "no router table cap in the settings"),
                      lab_endings=("ETIMEDOUT",) if size else ())
    bound = min(MAX_BOUND, int(size) + 16 if size else NO_CAP_BOUND)
    pin_measuring_server(lab)
    server = start_agent_server(lab, "hold")
    start = time.monotonic()
    opened = _hold(lab.clients[0], server, bound, connect_timeout, extra=1)
    duration = time.monotonic() - start
    router = lab.router.observe()
    seen = lab.server.observe(server.port)["sockets"]["local_port"]
    dropped = nft_counter(lab, lab.router, "table_full")
    server.stop()
    evidence = {"router_conntrack_entries": router["conntrack_count"], "router_table_full_drops": dropped,
                "server_established": seen.get("ESTABLISHED", 0), "server_sees": "the router's address (masquerade)",
                "how": (f"the router dropped {dropped} SYNs of new connections (nft counter table_full) "
                        f"with {router['conntrack_count']} connections tracked" if size else
                        "the router forwarded every connection")}
    return observation(lab, "router_table", exp, observed=int(opened["established"]),
                       ended_by=_first_error(opened), bound=bound, duration_s=duration,
                       states={"server": seen}, evidence=evidence)
