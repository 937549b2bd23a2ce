"""accept_overflow: final ACKs that arrive while the accept queue is full.

A late client's SYNs are answered (SYN_RECV) but its final ACKs are held back
at the server; then the accept queue of the never-accepting listener is filled
by another client; then the late ACKs are let through, at the server's next
SYN-ACK retransmission. With tcp_abort_on_overflow=0 (Linux's default) the
kernel drops them and the late clients, who believe they are connected, hang
without an error; with 1 it resets them (ECONNRESET), which is what Windows does
for a connect to a full backlog.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..report.observation import NO_ERROR, Observation, counter_delta
from .common import drop_final_acks, expectation, observation, second_source, start_agent_server

if TYPE_CHECKING:
    from ..lab.lab import Lab

LIMIT = "accept_overflow"
CHAIN = "late_final_acks"
SYNACK_RETRY_S = 3.0  # SYN-ACK retransmissions come 1 s and 3 s after the SYN (initial RTO 1 s)
# where a reset is expected, wait for it past the retransmissions at 7 and 15 s too: a slow host (a
# software-CPU VM) may flush the drop rule after the 3 s one; the wait ends at the resets
RESET_WAIT_S = 15.5


def accept_overflow(lab: Lab, late: int = 4, backlog: int = 5) -> Observation:
    """Count the late handshakes the server resets once its accept queue is full."""
    filler = lab.clients[0]
    late_host, late_ip = second_source(lab)
    abort, somaxconn = lab.server.int_sysctls(["net.ipv4.tcp_abort_on_overflow", "net.core.somaxconn"]).values()
    queue = min(backlog, somaxconn) + 1
    exp = expectation(lab, LIMIT, (late if abort else 0, f"tcp_abort_on_overflow={abort}"),
                      lab_endings=("ECONNRESET",) if abort else ())
    server = start_agent_server(lab, "never", backlog=backlog)
    drop_final_acks(lab, CHAIN, late_ip, server.port)
    before = lab.server.observe(server.port)["counters"]
    start = time.monotonic()
    held = late_host.agent("burst", "--target", server.endpoint, "--sources", late_ip, "--count",
                           str(late), "--settle", "1", "--hold", "120",
                           "--check", str(RESET_WAIT_S if abort else SYNACK_RETRY_S + 0.5))
    late_states = held.expect("burst", timeout=30)["states"]
    fill = filler.agent("open", "--target", server.endpoint, "--sources", filler.address,
                        "--count", str(queue), "--timeout", "2", "--deadline", "30", "--hold", "120")
    filled = fill.expect("opened", timeout=60)
    full = lab.server.observe(server.port)
    lab.server.run(["nft", "flush", "chain", "inet", lab.nft_table, CHAIN])
    held.release()  # the role waits --check seconds for news: the next SYN-ACK retransmission
    ends = held.expect("released", timeout=30)
    duration = time.monotonic() - start
    after = lab.server.observe(server.port)
    held.stop()
    fill.stop()
    server.stop()
    reset = int(ends["connected"].get("ECONNRESET", 0))
    evidence = {"late_clients": late, "late_states_before": late_states, "late_after": ends["connected"],
                "accept_queue_when_acks_arrived": full["sockets"]["accept_queue"], "accept_queue_size": queue,
                "filler_completed": filled["established"], "tcp_abort_on_overflow": abort,
                "how": ("the full accept queue answered each late ACK with a reset" if reset else
                        "the late ACKs were dropped: the late clients believe they are connected "
                        "and hear nothing")}
    return observation(lab, LIMIT, exp, observed=reset, ended_by="ECONNRESET" if reset else NO_ERROR,
                       bound=late, duration_s=duration,
                       counters=counter_delta(before, after["counters"], ("TcpExtListenOverflows",)),
                       states={"server": full["sockets"]["local_port"]}, evidence=evidence)
