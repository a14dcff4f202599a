"""The client's address behind trusted proxies: X-Forwarded-For believed only from them, walked from the right."""

from __future__ import annotations

from typing import Any

import pytest

from lfusys.forwarded import ForwardedHeaders, TrustedProxies, client_address, parse_address

LB = "10.0.0.5"
"""A load balancer in the trusted network."""
TRUSTED = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # No header: the peer, trusted or not.
        ("203.0.113.7", [], "203.0.113.7"),
        (LB, [], LB),
        # An untrusted peer's header is whatever it wants it to be: ignored.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", ["198.51.100.1, 10.0.0.9"], "203.0.113.7"),
        # A trusted peer: the hop it saw.
        (LB, ["198.51.100.1"], "198.51.100.1"),
        ("192.0.2.1", ["198.51.100.1"], "198.51.100.1"),
        # What the client wrote stands left of the hop the proxy appended, and is never reached.
        (LB, ["1.1.1.1, 2.2.2.2, 198.51.100.1"], "198.51.100.1"),
        # Several trusted proxies in a row: past all of them.
        (LB, ["198.51.100.1, 10.1.2.3, 10.9.9.9"], "198.51.100.1"),
        (LB, ["6.6.6.6, 198.51.100.1, 192.0.2.1, 10.1.2.3"], "198.51.100.1"),
        # One header line per proxy is the same list as one line.
        (LB, ["6.6.6.6, 198.51.100.1", "10.1.2.3"], "198.51.100.1"),
        # Every hop trusted: the leftmost, a machine of the proxies' own network.
        (LB, ["10.3.3.3, 10.2.2.2"], "10.3.3.3"),
        (LB, ["10.3.3.3"], "10.3.3.3"),
        # Garbage ends the walk at the last address read.
        (LB, ["not-an-ip"], LB),
        (LB, [""], LB),
        (LB, ["unknown, 10.2.2.2"], "10.2.2.2"),
        (LB, ["198.51.100.1, garbage"], LB),
        (LB, ["198.51.100.1, 10.2.2.2, ;drop table"], LB),
        # Garbage left of the client's hop does not matter.
        (LB, ["garbage, 198.51.100.1"], "198.51.100.1"),
        # Ports, as some proxies write them.
        (LB, ["198.51.100.1:5123"], "198.51.100.1"),
        # IPv6: plain, bracketed with a port, normalised; trusted IPv6 proxies; an IPv6 peer.
        (LB, ["2001:DB8:0:0::1"], "2001:db8::1"),
        (LB, ["[2001:db8::1]:443"], "2001:db8::1"),
        ("fd00::1", ["2001:db8::1, fd12::3"], "2001:db8::1"),
        ("2001:db8::9", ["198.51.100.1"], "2001:db8::9"),
        # An IPv4 peer seen through a dual-stack socket is still that IPv4 address.
        ("::ffff:10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
        ("::ffff:203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
    ],
)
def test_client_address(peer: str, forwarded_for: list[str], expected: str) -> None:
    assert client_address(peer, forwarded_for, TRUSTED) == expected


def test_without_trusted_proxies_the_header_is_never_believed() -> None:
    assert client_address("127.0.0.1", ["198.51.100.1"], TrustedProxies([])) == "127.0.0.1"


def test_a_peer_that_is_not_an_address_is_given_back_as_it_is() -> None:
    assert client_address("testclient", ["198.51.100.1"], TRUSTED) == "testclient"
    assert client_address(None, ["198.51.100.1"], TRUSTED) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:80", "203.0.113.7"),
        ("[::1]", "::1"),
        ("[::1]:8080", "::1"),
        ("::1", "::1"),
        ("[::1", None),
        ("example.org", None),
        ("999.1.1.1", None),
        ("", None),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address else None) == expected


def test_trusted_proxies_refuse_what_is_not_an_address_or_network() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6"):
        TrustedProxies(["proxy.internal"])


async def _scope_after(headers: list[tuple[bytes, bytes]], peer: str = LB, scope_type: str = "http") -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope)

    scope: dict[str, Any] = {
        "type": scope_type,
        "client": (peer, 40000),
        "scheme": "http" if scope_type == "http" else "ws",
        "headers": headers,
    }
    await ForwardedHeaders(app, TRUSTED)(scope, None, None)  # type: ignore[arg-type]
    return seen


async def test_the_scope_gets_the_client_and_scheme_a_trusted_proxy_forwarded() -> None:
    scope = await _scope_after([(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1"), (b"x-forwarded-proto", b"https")])

    assert scope["client"] == ("198.51.100.1", 0)
    assert scope["scheme"] == "https"


async def test_websockets_get_the_scheme_as_ws_or_wss() -> None:
    scope = await _scope_after([(b"x-forwarded-proto", b"https")], scope_type="websocket")

    assert scope["scheme"] == "wss"


async def test_an_untrusted_peer_changes_nothing() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-proto", b"https")]
    scope = await _scope_after(headers, peer="203.0.113.7")

    assert scope["client"] == ("203.0.113.7", 40000)
    assert scope["scheme"] == "http"


async def test_an_unknown_scheme_is_ignored_and_no_header_keeps_the_peer() -> None:
    scope = await _scope_after([(b"x-forwarded-proto", b"gopher")])

    assert scope["client"] == (LB, 40000)
    assert scope["scheme"] == "http"
