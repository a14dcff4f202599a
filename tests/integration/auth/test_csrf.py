"""Cookie-authenticated state changes need the CSRF header: a cross-site form post changes nothing."""

from __future__ import annotations

from tests.support import API, PASSWORD, AppClient, csrf_headers, login, signed_in

Client = AppClient
EVIL = {"origin": "https://evil.example", "referer": "https://evil.example/page"}


async def test_a_cross_site_form_post_to_logout_changes_nothing(client: Client) -> None:
    await signed_in(client)

    # What a hostile page's auto-submitted <form method=post> sends: the victim's cookies, no header.
    response = await client.post(
        f"{API}/auth/logout",
        content=b"x=1",
        headers={**EVIL, "content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 403
    assert response.json() == {"error": "CSRF token verification failed"}
    assert "set-cookie" not in response.headers or "Max-Age=0" not in response.headers["set-cookie"]
    assert (await client.get(f"{API}/auth/me")).status_code == 200
    refreshed = await client.post(f"{API}/auth/refresh", headers=await csrf_headers(client))
    assert refreshed.status_code == 200


async def test_a_cross_site_form_post_with_a_guessed_token_is_refused(client: Client) -> None:
    await signed_in(client)

    response = await client.post(
        f"{API}/auth/logout",
        content=b"_csrf_token=guess",
        headers={**EVIL, "content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 403
    assert (await client.get(f"{API}/auth/me")).status_code == 200


async def test_a_cross_site_registration_creates_no_account(client: Client) -> None:
    await client.get(f"{API}/auth/me")  # the victim's browser holds a CSRF cookie

    response = await client.post(
        f"{API}/auth/register",
        json={"name": "Mallory", "email": "mallory@example.com", "password": PASSWORD},
        headers=EVIL,
    )

    assert response.status_code == 403
    assert (await login(client, "mallory@example.com")).status_code == 401


async def test_a_header_that_does_not_match_the_cookie_is_refused(client: Client) -> None:
    await signed_in(client)

    response = await client.post(f"{API}/auth/logout", headers={"x-csrf-token": "0" * 64})

    assert response.status_code == 403
    assert (await client.get(f"{API}/auth/me")).status_code == 200


async def test_the_csrf_cookie_is_readable_by_the_page(client: Client) -> None:
    response = await client.get(f"{API}/auth/me")

    csrf_cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("lfusys_csrf="))
    assert "HttpOnly" not in csrf_cookie
    assert "SameSite=lax" in csrf_cookie


async def test_safe_methods_need_no_token(client: Client) -> None:
    await signed_in(client)
    client.cookies.delete("lfusys_csrf")

    assert (await client.get(f"{API}/auth/me")).status_code == 200


async def test_the_token_in_a_form_field_is_not_accepted_even_when_it_is_right(client: Client) -> None:
    await signed_in(client)
    token = (await csrf_headers(client))["x-csrf-token"]

    # The real token, as a form field next to the victim's cookies: only the header counts.
    response = await client.post(
        f"{API}/auth/logout",
        content=f"_csrf_token={token}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 403
    assert (await client.get(f"{API}/auth/me")).status_code == 200


async def test_a_token_with_non_ascii_characters_is_refused_not_a_server_error(client: Client) -> None:
    await signed_in(client)

    response = await client.post(f"{API}/auth/logout", headers={b"x-csrf-token": ("é" * 64).encode("latin-1")})

    assert response.status_code == 403
    assert (await client.get(f"{API}/auth/me")).status_code == 200
