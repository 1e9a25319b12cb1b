"""Signing a visitor in to a closed 23 site: a session token (any visitor) or a user login
token (an existing 23 account). Both end in a URL the visitor's browser must redeem itself:
redeeming server-side would burn the token and put 23's cookie in the gateway's client."""

from __future__ import annotations

from gateway.errors import Forbidden, UpstreamBadResponse
from gateway.twentythree import urls
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.coerce import as_int

USER_SEARCH_PAGES = 5
USER_LOOKUPS = 20  # user/get calls per sign-in (api/2 lists no e-mail)


class NoAccount(Forbidden, code="no_account"):
    """There is no account on this video site for your e-mail address."""


def session_redirect(client: TwentyThreeClient, email: str, full_name: str, return_url: str) -> str:
    """``session/get-token`` for this visitor; the redeem URL to send the browser to."""
    response = client.call(
        "session/get-token",
        {"email": email, "full_name": full_name, "return_url": return_url},
        read=False,
    )
    token = response.payload("sessiontoken")
    access_token = token.get("access_token") if isinstance(token, dict) else None
    if not isinstance(access_token, str) or not access_token:
        raise UpstreamBadResponse("The video site gave no session token.")
    return urls.redeem_session_url(client.site.url, access_token)


def find_user_id(client: TwentyThreeClient, email: str) -> int:
    """The 23 user whose e-mail is exactly this one (case-insensitive), or NoAccount.

    23 has no e-mail filter: ``search`` narrows, and the exact match is checked here. api/2's
    ``user/list`` shows no e-mail, so each candidate's is read with ``user/get``.
    """
    wanted = email.strip().lower()
    lookups = USER_LOOKUPS
    for page in range(1, USER_SEARCH_PAGES + 1):
        listed = client.call("user/list", {"search": email, "size": 100, "p": page})
        users = listed.items("users")
        for user in users:
            user_id = as_int(user.get("user_id"))
            if user_id is None:
                continue
            if "email" not in user and lookups > 0:
                lookups -= 1
                user = client.call("user/get", {"user_id": user_id}).payload("user")
            if isinstance(user, dict) and str(user.get("email", "")).strip().lower() == wanted:
                return user_id
        if len(users) < (as_int(listed.envelope.get("size")) or 100):  # 23 may serve fewer
            break
    raise NoAccount()


def user_login_redirect(client: TwentyThreeClient, email: str, return_url: str) -> str:
    """``user/get-login-token`` for the existing account with this e-mail."""
    user_id = find_user_id(client, email)
    response = client.call(
        "user/get-login-token", {"user_id": user_id, "return_url": return_url}, read=False
    )
    token = response.payload("logintoken")
    login_token = token.get("login_token") if isinstance(token, dict) else None
    if not isinstance(login_token, str) or not login_token:
        raise UpstreamBadResponse("The video site gave no login token.")
    return urls.redeem_login_url(client.site.url, login_token)
