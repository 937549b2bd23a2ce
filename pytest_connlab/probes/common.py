"""What every probe does: start the agent's server, resolve the expectation, build the Observation."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..agent.proto import Opened, Responses
from ..profiles.emulation import nft_chain
from ..profiles.errnos import linux_names_for
from ..report.observation import NO_ERROR, Observation

if TYPE_CHECKING:
    from ..lab.lab import Lab
    from ..lab.labhost import LabHost
    from ..lab.providers.agentproc import AgentProcess
    from ..lab.target import Target

NO_CAP_BOUND = 200  # connections tried when the lab's settings imply no cap
MAX_BOUND = 19_000  # one agent process, under the 20,000 descriptor limit


@dataclass(frozen=True)
class LabExpectation:
    """What the lab should show for a limit, and what the documents say."""

    value: int | None
    ended_by: tuple[str, ...]
    documented: int | None
    documented_ended_by: str | None
    source: str


def start_agent_server(lab: Lab, mode: str, backlog: int = 4096, port: int = 0,
                       extra: tuple[str, ...] = ()) -> Target:
    """Run the agent's server on the lab's server host and wait until it listens."""
    from ..lab.target import Target
    if "--nofile" not in extra:
        extra = (*extra, *server_args(lab))
    proc = lab.server.agent("server", "--port", str(port), "--backlog", str(backlog),
                            "--mode", mode, "--max-seconds", "900", *extra)
    ready = proc.expect("ready", timeout=15)
    return Target(lab.server, lab.server.address, int(ready["port"]), proc, ready)


def own_or_agent_server(lab: Lab, target: Target | None, mode: str, backlog: int = 4096
                        ) -> tuple[Target, str]:
    """The user's own server when given (a program started with ``lab.server.start``), else the
    agent's server in ``mode``; and how to say which in the evidence."""
    if target is not None:
        return target, f"your program on {target.endpoint}"
    return start_agent_server(lab, mode, backlog=backlog), f"the agent's {mode} server"


def stop_own(server: Target, target: Target | None) -> dict[str, Any]:
    """Stop the agent's server (its final stats); a user's program is the user's to stop: {}."""
    return dict(server.stop()) if target is None else {}


def expectation(lab: Lab, limit: str, derived: tuple[int | None, str],
                to_lab: Callable[[int], int] = lambda v: v,
                default_endings: tuple[str, ...] = (),
                lab_endings: tuple[str, ...] | None = None) -> LabExpectation:
    """The profile's documented expectation turned into what a Linux lab shows; when the
    profile states none, the value the lab's own settings imply (``derived``)."""
    documented = lab.profile.expect.get(limit)
    if documented is None:
        value, how = derived
        return LabExpectation(value, lab_endings or default_endings, None, None, f"derived: {how}")
    value = None if documented.value is None else to_lab(documented.value)
    endings = lab_endings
    if endings is None:
        endings = tuple(sorted(linux_names_for(documented.ended_by))) if documented.ended_by \
            else default_endings
    source = f"profile {lab.profile.name}: {documented.source}"
    if value is not None and value != documented.value:
        source += f" ({documented.value} documented -> {value} on a Linux kernel)"
    return LabExpectation(value, endings, documented.value, documented.ended_by, source)


def observation(lab: Lab, limit: str, exp: LabExpectation, observed: int, ended_by: str,
                bound: int, duration_s: float, **extra: object) -> Observation:
    """An Observation carrying the profile's fidelity for ``limit``; recorded on the lab."""
    fidelity, reason = lab.profile.fidelity_for(limit)
    obs = Observation(limit=limit, profile=lab.profile.name, provider=lab.provider.name,
                      observed=observed, expected=exp.value, ended_by=ended_by,
                      expected_ended_by=exp.ended_by, documented=exp.documented,
                      documented_ended_by=exp.documented_ended_by,
                      expectation_from=exp.source, fidelity=fidelity, fidelity_reason=reason,
                      duration_s=round(duration_s, 3), bound=bound, **extra)  # type: ignore[arg-type]
    return lab.record(obs)


def server_args(lab: Lab) -> list[str]:
    """Agent server options carrying the profile's process limits for the server."""
    nofile = lab.server.rlimits.get("nofile")
    return ["--nofile", str(nofile)] if nofile else []


def nft_json(host: LabHost, *what: str) -> list[dict[str, Any]]:
    """``nft -j list <what>`` inside a host, as the list of objects (empty when it failed)."""
    result = host.run(["nft", "-j", "list", *what])
    if result.returncode != 0:
        return []
    return list(json.loads(result.stdout).get("nftables", []))


def nft_counter(lab: Lab, host: LabHost, name: str) -> int | None:
    """Packets counted so far by the named counter of this lab's nft table on ``host``."""
    for item in nft_json(host, "counter", "inet", lab.nft_table, name):
        if "counter" in item:
            return int(item["counter"]["packets"])
    return None


def nft_set_size(lab: Lab, host: LabHost, name: str) -> int | None:
    """Elements now in the named set of this lab's nft table on ``host``."""
    for item in nft_json(host, "set", "inet", lab.nft_table, name):
        if "set" in item:
            return len(item["set"].get("elem", []))
    return None


def drop_final_acks(lab: Lab, chain: str, source: str, port: int) -> None:
    """On the server, drop the final ACK (and every later ACK) from ``source`` to ``port``: its
    connects stay half-open (SYN_RECV) on the server while the client believes it is connected."""
    lab.load_nft(lab.server, [nft_chain(chain, "input", [
        f"ip saddr {source} tcp dport {port} tcp flags & (syn | ack) == ack counter drop"])])


def http_clients(lab: Lab, endpoint: str, clients: int, timeout: float) -> Responses:
    """``clients`` kept-alive HTTP connections from the first client, one request each: the answers."""
    client = lab.clients[0]
    proc = client.agent("http", "--target", endpoint, "--sources", ",".join(client.addresses),
                        "--requests", str(clients), "--timeout", str(timeout), "--hold", "60")
    answers = proc.expect("responses", timeout=clients + timeout * 2 + 30)
    proc.stop()
    return answers


def second_source(lab: Lab) -> tuple[LabHost, str]:
    """Another client address than the first client's primary one: the second client, or the
    first client's second IP. LabSetupError when the topology has neither."""
    from ..errors import LabSetupError
    if len(lab.clients) > 1:
        return lab.clients[1], lab.clients[1].address
    if len(lab.clients[0].addresses) > 1:
        return lab.clients[0], lab.clients[0].addresses[1]
    raise LabSetupError("this probe needs two client addresses: "
                        "@pytest.mark.topology(clients=2) or ips_per_client=2")


MEASURING_QUEUE = 4096  # the measuring server's accept queue, unless a probe needs more
MAX_QUEUE = 65535


def pin_measuring_server(lab: Lab, why: str = "the measuring server must not drop SYNs while it "
                         "accepts: the limit measured is elsewhere", queue: int = MEASURING_QUEUE) -> None:
    """Give the server's accept queue room (somaxconn ``queue``), whatever the profile's backlog cap."""
    lab.pin("server", {"net.core.somaxconn": str(queue)}, why, override=True)


def hold_connections(client: LabHost, target: Target, count: int, timeout: float,
                     extra: int = 2) -> tuple[AgentProcess, Opened]:
    """Open and hold up to ``count`` connections from every address of ``client``; after the first
    failure try ``extra`` more at once. The holding process (stop it once the server side has been
    read: the connections close with it) and its 'opened' event."""
    proc = client.agent("open", "--target", target.endpoint, "--sources", ",".join(client.addresses),
                        "--count", str(count), "--timeout", str(timeout), "--deadline", "120",
                        "--extra", str(extra), "--hold", "300")
    return proc, proc.expect("opened", timeout=timeout * (extra + 2) + 150)


def first_error(opened: Opened) -> str:
    """The name of the first error an 'opened' event reports, or no error."""
    errors = opened["errors"]
    return str(errors[0]["name"]) if errors else NO_ERROR
