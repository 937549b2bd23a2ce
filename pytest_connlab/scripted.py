"""A lab outside pytest (benchmarks, scripts): the same provider, profiles, sweep and teardown.

    with standalone_lab("linux-tuned", clients=4, ips_per_client=8) as lab:
        print(lab.probe.hold(connections=100_000, for_s=5).explain())

The run takes a run lock like a pytest run does, so `connlab clean` or a later
run sweeps what a killed script left; normal exit and Ctrl-C tear down at once.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .factory import LabFactory
from .lab.addressing import worker_slice
from .lab.names import new_run_id
from .lab.providers import ProviderOptions, every_provider, get_provider
from .lab.reaper import RunLock, sweep
from .lab.topology import TopologyRequest
from .probes import ProbedLab
from .profiles.profile import builtin_dir, discover
from .report.progress import StderrProgress


@contextmanager
def standalone_lab(profile: str, clients: int = 1, ips_per_client: int = 1, router: bool = False,
                   labs_dir: Path | None = None, provider: str = "netns",
                   options: ProviderOptions | None = None, extra_dirs: list[Path] | None = None,
                   connections: int | None = None) -> Iterator[ProbedLab]:
    """Build one lab of ``profile`` from ``labs_dir`` (or the shipped profiles: ``labs/`` in a
    checkout, ``pytest_connlab/labs`` in a wheel) and ``extra_dirs`` (your own, which shadow
    shipped ones); tear it down when the block ends. ``connections``: a scale lab's planned
    count (each namespace its own TCP hash, see TopologyRequest)."""
    labs_dir = labs_dir or builtin_dir()
    profiles = discover([*(extra_dirs or []), labs_dir])
    if profile not in profiles:
        raise SystemExit(f"connlab: unknown lab {profile!r}; known: {', '.join(sorted(profiles))}")
    sweep(every_provider())
    lock = RunLock(new_run_id()).acquire()
    factory = LabFactory(get_provider(provider, options or ProviderOptions()), lock.run_id, "main", worker_slice(0, 1))
    try:
        lab = factory.build(profiles[profile], TopologyRequest(clients, ips_per_client, router,
                                                                     connections=connections))
        lab.progress = StderrProgress()
        yield lab
    finally:
        problems = factory.close()
        lock.release()
        for problem in problems:
            print(f"connlab: teardown problem: {problem}", file=sys.stderr)
