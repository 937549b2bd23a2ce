"""Lab addresses: 198.18.0.0/15 (RFC 2544), one slice per pytest-xdist worker."""
from __future__ import annotations

import math
from ipaddress import IPv4Network

from ..errors import AddressSpaceExhausted

LAB_RANGE = IPv4Network("198.18.0.0/15")
SMALLEST_SLICE_PREFIX = 20  # 4,096 addresses per worker at most 32 workers




def worker_slice(index: int, total: int) -> IPv4Network:
    """The part of 198.18.0.0/15 that worker ``index`` of ``total`` may use."""
    if total < 1 or not 0 <= index < total:
        raise ValueError(f"worker {index} of {total}")
    prefix = LAB_RANGE.prefixlen + math.ceil(math.log2(total)) if total > 1 else LAB_RANGE.prefixlen
    if prefix > SMALLEST_SLICE_PREFIX:
        raise ValueError(f"{total} workers leave less than a /{SMALLEST_SLICE_PREFIX} each")
    return list(LAB_RANGE.subnets(new_prefix=prefix))[index]


def prefix_for(hosts: int) -> int:
    """The longest prefix whose subnet holds ``hosts`` addresses plus network and broadcast."""
    return 32 - max(2, math.ceil(math.log2(hosts + 2)))


class SubnetAllocator:
    """First-fit allocator of aligned subnets inside one slice; subnets are given back on release."""

    def __init__(self, slice_: IPv4Network) -> None:
        self.slice = slice_
        self._taken: list[IPv4Network] = []

    def allocate(self, hosts: int) -> IPv4Network:
        """A free subnet with room for ``hosts`` addresses."""
        prefix = prefix_for(hosts)
        if prefix < self.slice.prefixlen:
            raise AddressSpaceExhausted(f"{hosts} addresses do not fit in {self.slice}")
        for candidate in self.slice.subnets(new_prefix=prefix):
            if not any(candidate.overlaps(t) for t in self._taken):
                self._taken.append(candidate)
                return candidate
        raise AddressSpaceExhausted(f"no free /{prefix} left in {self.slice}")

    def release(self, subnet: IPv4Network) -> None:
        """Give a subnet back."""
        self._taken.remove(subnet)
