"""Where webhooks may go: only to public addresses, unless the admin allows a network.

A tenant names the URL, and the operator runs inside the cluster: without a guard a
WebhookEndpoint could make it POST to the API server, a cloud metadata service or anything
on the pod network. So the host is resolved first and every address it resolves to is
checked; the connection is then made to exactly those checked addresses (the resolver is
the connector's own, so a DNS answer cannot change between the check and the connect).
A refused destination raises before any socket is opened.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefusedError(Exception):
    """The URL's host is (or resolves to) an address webhooks may not reach."""


def parse_networks(text: str) -> list[Network]:
    """`MEDIAPLANE_WEBHOOK_ALLOWED_NETWORKS`: comma-separated CIDRs, e.g. 127.0.0.0/8."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in text.split(",") if part.strip()]


def refusal(address: Address, allowed: Sequence[Network]) -> str | None:
    """Why this address is refused, or None when webhooks may go there."""
    if any(address in network for network in allowed):
        return None
    if address.is_global and not address.is_multicast:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped, allowed)
    what = ("loopback" if address.is_loopback else "private" if address.is_private
            else "link-local" if address.is_link_local else "not a public")
    return f"{address} is a {what} address (not allowed for webhooks here)"


def check_url(url: str, allowed: Sequence[Network]) -> None:
    """The scheme, and the host when it is an address literal (those skip the resolver)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefusedError(f"{url!r} is not an http(s) URL with a host")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    reason = refusal(literal, allowed)
    if reason is not None:
        raise DestinationRefusedError(reason)


class GuardedResolver(AbstractResolver):
    """The connector's resolver: resolves with `inner`, then refuses the whole host when any
    of its addresses is refused (a name with one private address is not a public name)."""

    def __init__(self, allowed: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self.allowed = list(allowed)
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        for entry in found:
            reason = refusal(ipaddress.ip_address(entry["host"].split("%")[0]), self.allowed)
            if reason is not None:
                raise DestinationRefusedError(f"{host} resolves to {reason}")
        return found

    async def close(self) -> None:
        await self.inner.close()
