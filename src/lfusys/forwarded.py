"""Who the client is when requests come through reverse proxies (``LFUSYS_TRUSTED_PROXIES``).

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the direct peer is a trusted
proxy: anyone else can write whatever they like into them. Each proxy appends the address it saw
to ``X-Forwarded-For``, so the client is found by walking the list from the right, past the trusted
proxies, to the first hop that is not one; what lies further left was written by the client itself.

The app resolves these headers itself, in :class:`ForwardedHeaders`, rather than leaving it to the
ASGI server: it then answers the same under uvicorn, under the test client and behind any server,
and ``lfusys serve`` turns uvicorn's own proxy-header handling off (see ``cli.py``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = {ScopeType.HTTP: {"http", "https"}, ScopeType.WEBSOCKET: {"ws", "wss"}}


def parse_address(text: str) -> IPAddress | None:
    """An IP address as proxies write it (``203.0.113.7``, ``203.0.113.7:5000``, ``2001:db8::1``,
    ``[2001:db8::1]:443``), with IPv4-mapped IPv6 (``::ffff:203.0.113.7``) read as IPv4; None for
    anything else (``unknown``, a name, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The addresses and networks (``10.0.0.1``, ``10.0.0.0/8``, ``fd00::/8``) whose forwarding
    headers are believed."""

    def __init__(self, entries: Iterable[str]) -> None:
        """Raise ``ValueError`` for an entry that is neither an address nor a network."""
        self._networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in entries
        )

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str | None:
    """The client's address: the direct ``peer``, or, when the peer is a trusted proxy, the
    rightmost ``X-Forwarded-For`` hop that is not itself a trusted proxy (each value of
    ``forwarded_for`` is one header line, a comma-separated list of hops).

    If every hop is trusted, the leftmost is the client (a machine of the proxies' own network).
    A hop that is not an address ends the walk: the last address read is the best one known (a
    trusted proxy), since nothing a client wrote may choose whom it is counted as. A peer that is
    not an IP address (a Unix socket) is returned as it is.
    """
    address = parse_address(peer) if peer is not None else None
    if address is None:
        return peer
    if not trusted or address not in trusted:
        return str(address)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        parsed = parse_address(hop)
        if parsed is None:
            break
        address = parsed
        if address not in trusted:
            break
    return str(address)


class ForwardedHeaders:
    """Sets the scope's ``client`` and ``scheme`` from the forwarding headers of trusted proxies, so
    everything downstream (rate limits, logs, URLs) sees the real client and whether it used HTTPS."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.trusted and scope["type"] in _SCHEMES:
            self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> None:
        client = scope.get("client")
        peer = parse_address(client[0]) if client else None
        if peer is None or peer not in self.trusted:
            return
        forwarded_for: list[str] = []
        proto: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded_for.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
        if forwarded_for:
            resolved = client_address(str(peer), forwarded_for, self.trusted)
            if resolved is not None and resolved != str(peer):
                scope["client"] = (resolved, 0)
        if proto is not None:
            if scope["type"] == ScopeType.WEBSOCKET:
                proto = proto.replace("http", "ws")
            if proto in _SCHEMES[scope["type"]]:
                scope["scheme"] = proto
