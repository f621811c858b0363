#!/usr/bin/env python3
"""The official MCP Python SDK client, end to end against an MCP server guarded
by bearer-guard (the rmcp demo server), with a real AS (as.mjs) behind it and no
browser.

    .venv/bin/python mcp-client-py.py --server http://127.0.0.1:PORT/mcp [--timeout 90] [--verbose]

The SDK (`mcp`, pinned in requirements.txt) does all the OAuth work through its
`OAuthClientProvider` (an httpx2 Auth): 401 -> WWW-Authenticate -> RFC 9728 PRM
-> RFC 8414 AS metadata -> DCR -> authorization code + PKCE + RFC 8707 resource
-> token, and on a 403 insufficient_scope a step-up re-authorization. This
script only supplies:

- the redirect/callback handlers: `redirect_handler(url)` follows the
  authorization URL with an httpx2 client and its cookie jar (the "browser")
  through as.mjs's auto-approving interaction until the redirect URI, and
  `callback_handler()` hands the captured code/state/iss back to the SDK;
- in-memory token storage;
- a recording, time-bounded httpx2 transport, so every HTTP exchange the SDK
  makes can be checked.

Token values are never printed. Prints one PASS/FAIL line per check (INFO lines
are not counted) and `N passed, M failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import socket
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REQUEST_TIMEOUT_S = 15.0


# --- reporting -----------------------------------------------------------------
class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, name: str, cond: Any, detail: str = "") -> bool:
        if cond:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if cond else 'FAIL'} {name}{f' - {detail}' if detail else ''}", flush=True)
        return bool(cond)

    def info(self, name: str, detail: str = "") -> None:
        print(f"INFO {name}{f' - {detail}' if detail else ''}", flush=True)

    def summary(self) -> int:
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1


c = Checks()
VERBOSE = False


def vlog(*a: Any) -> None:
    if VERBOSE:
        print("[client]", *a, file=sys.stderr, flush=True)


# --- helpers -------------------------------------------------------------------
def is_jwt(token: Any) -> bool:
    return isinstance(token, str) and re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]*", token) is not None


def b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def token_summary(j: Any) -> dict[str, Any] | None:
    """What may be printed about a token response: never the token values."""
    if not isinstance(j, dict):
        return None
    s: dict[str, Any] = {
        "token_type": j.get("token_type"),
        "expires_in": j.get("expires_in"),
        "scope": j.get("scope"),
        "has_refresh_token": isinstance(j.get("refresh_token"), str),
        "access_token_is_jwt": is_jwt(j.get("access_token")),
    }
    if s["access_token_is_jwt"]:
        h, p, _ = j["access_token"].split(".")
        header, payload = b64url_json(h), b64url_json(p)
        s.update(typ=header.get("typ"), alg=header.get("alg"), aud=payload.get("aud"),
                 jwt_scope=payload.get("scope"), iss=payload.get("iss"))
    return s


def parse_challenge(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not header:
        return out
    for m in re.finditer(r'([a-zA-Z_]+)=(?:"([^"]*)"|([^\s,]+))', header):
        out[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def same_url(a: Any, b: Any) -> bool:
    try:
        return str(httpx2.URL(str(a))) == str(httpx2.URL(str(b)))
    except Exception:
        return False


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_of(result: Any) -> str:
    return "".join(getattr(x, "text", "") for x in (getattr(result, "content", None) or []) if getattr(x, "type", "") == "text")


# --- recording transport ---------------------------------------------------------
@dataclass
class Exchange:
    i: int
    method: str
    url: str
    has_authorization: bool
    form: dict[str, Any] | None = None
    jsonrpc: list[str] | None = None
    tool: str | None = None
    registration: Any = None
    status: int | None = None
    www_authenticate: str | None = None
    json: Any = None
    token: dict[str, Any] | None = None
    error: str | None = None


REC: list[Exchange] = []


def summarize_form(body: bytes) -> dict[str, Any]:
    q = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {
        "names": sorted(q.keys()),
        "grant_type": (q.get("grant_type") or [None])[0],
        "resource": q.get("resource", []),
        "scope": (q.get("scope") or [None])[0],
    }


class RecordingTransport(httpx2.AsyncBaseTransport):
    """Wraps the real transport; records every request the SDK sends (auth-flow ones included)."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        e = Exchange(i=len(REC), method=request.method, url=str(request.url),
                     has_authorization="authorization" in request.headers)
        REC.append(e)
        ct = request.headers.get("content-type", "")
        try:
            body = request.content
        except Exception:  # a streaming body: nothing to record
            body = b""
        if body and "x-www-form-urlencoded" in ct:
            e.form = summarize_form(body)
        elif body and "json" in ct:
            try:
                j = json.loads(body)
                msgs = j if isinstance(j, list) else [j]
                if all(isinstance(m, dict) and m.get("jsonrpc") == "2.0" for m in msgs):
                    e.jsonrpc = [m.get("method", "response") for m in msgs]
                    e.tool = next((m.get("params", {}).get("name") for m in msgs if m.get("method") == "tools/call"), None)
                else:
                    e.registration = j  # DCR metadata: no secrets
            except ValueError:
                pass
        response = await self.inner.handle_async_request(request)
        e.status = response.status_code
        e.www_authenticate = response.headers.get("www-authenticate")
        rct = response.headers.get("content-type", "")
        vlog(e.method, e.url, "->", e.status, e.www_authenticate or "")
        if "json" in rct and not e.jsonrpc:
            # Buffer the raw body, hand the SDK an equivalent response, decode a copy for the record.
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            await response.aclose()
            copy = httpx2.Response(response.status_code, headers=response.headers, content=raw)
            try:
                j = json.loads(await copy.aread())
                if e.form and e.form.get("grant_type"):
                    e.token = token_summary(j)
                else:
                    e.json = j  # metadata / registration response (public client: no secret)
                if isinstance(j, dict) and j.get("error"):
                    e.error = j["error"]
            except ValueError:
                pass
            return httpx2.Response(response.status_code, headers=response.headers, content=raw,
                                   request=request, extensions=response.extensions)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the "browser" and the SDK's handlers ----------------------------------------
@dataclass
class Authorization:
    rec_index: int
    endpoint: str
    scope: str | None
    resource: list[str]
    code_challenge_method: str | None
    has_code_challenge: bool
    redirect_uri: str | None
    hops: list[str] = field(default_factory=list)
    error: str | None = None
    got_code: bool = False
    iss: str | None = None


class Browser:
    """Follows authorization URLs with redirects off and a persistent cookie jar (the AS session)."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=REQUEST_TIMEOUT_S)
        self.authorizations: list[Authorization] = []
        self.pending: AuthorizationCodeResult | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        u = urlparse(authorization_url)
        q = parse_qs(u.query)
        a = Authorization(
            rec_index=len(REC),
            endpoint=f"{u.scheme}://{u.netloc}{u.path}",
            scope=(q.get("scope") or [None])[0],
            resource=q.get("resource", []),
            code_challenge_method=(q.get("code_challenge_method") or [None])[0],
            has_code_challenge=bool(q.get("code_challenge")),
            redirect_uri=(q.get("redirect_uri") or [None])[0],
        )
        self.authorizations.append(a)
        self.pending = None
        url = authorization_url
        try:
            for _ in range(12):
                r = await self.http.get(url)
                path = re.sub(r"/[\w-]{20,}$", "/:uid", urlparse(url).path)
                a.hops.append(f"{r.status_code} {path}")
                location = r.headers.get("location")
                if r.status_code not in (301, 302, 303, 307, 308) or not location:
                    snippet = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r.text)).strip()[:300]
                    raise RuntimeError(f"authorization stopped at HTTP {r.status_code} on {path}: {snippet}")
                nxt = urljoin(url, location)
                if nxt.startswith(self.redirect_uri):
                    p = parse_qs(urlparse(nxt).query)
                    first = lambda k: (p.get(k) or [None])[0]  # noqa: E731
                    if first("error"):
                        a.error = f"{first('error')} {first('error_description') or ''}".strip()
                    a.iss = first("iss")
                    a.got_code = bool(first("code"))
                    if a.got_code:
                        self.pending = AuthorizationCodeResult(code=first("code"), state=first("state"), iss=a.iss)
                    return
                url = nxt
            raise RuntimeError("authorization did not reach the redirect URI within 12 hops")
        except Exception as err:  # recorded; callback_handler raises
            a.error = f"follow failed: {err}"

    async def callback_handler(self) -> AuthorizationCodeResult:
        result, self.pending = self.pending, None
        if result is None:
            raise RuntimeError(f"no authorization code captured ({self.authorizations[-1].error if self.authorizations else 'no authorization'})")
        return result


class MemoryStorage:
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


# --- the flow -----------------------------------------------------------------------
def split(s: Any) -> list[str]:
    return str(s or "").split()


async def run(server: str) -> None:
    opaque = urlparse(server).path.endswith("/opaque-mcp")
    redirect_uri = f"http://localhost:{unused_port()}/callback"
    browser = Browser(redirect_uri)
    provider = OAuthClientProvider(
        server_url=server,
        client_metadata=OAuthClientMetadata(
            client_name="bearer-guard interop (MCP Python SDK)",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=MemoryStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    http = httpx2.AsyncClient(auth=provider, transport=RecordingTransport(),
                              timeout=httpx2.Timeout(REQUEST_TIMEOUT_S))
    try:
        async with http, browser.http:
            # 1) Connect: the first request gets a 401; the SDK's auth flow discovers, registers,
            #    authorizes (through our handlers), exchanges the code and retries, all inside connect.
            #    mode="legacy" makes the SDK use the initialize handshake (its default, "auto", probes
            #    the 2026-07-28 server/discover first, which rmcp 3.11 answers: checked at the end).
            client_cm = Client(streamable_http_client(server, http_client=http), mode="legacy")
            connect_error: BaseException | None = None
            try:
                client = await client_cm.__aenter__()
            except Exception as err:  # still check what the SDK did before it failed
                connect_error, client = err, None
            checks_after_connect(client, server, browser, opaque, connect_error)
            if client is None:
                return
            try:
                await checks_tools(client, server, browser, opaque)
            finally:
                await client_cm.__aexit__(None, None, None)

            # 2) A second connection with the SDK's default mode ("auto": server/discover, 2026-07-28),
            #    reusing the provider and its tokens: no new authorization.
            rec_before, auths_before = len(REC), len(browser.authorizations)
            try:
                async with Client(streamable_http_client(server, http_client=http)) as client2:
                    echo = await client2.call_tool("echo", {"text": "auto mode"})
                    probe = [e for e in REC[rec_before:] if e.jsonrpc and "server/discover" in e.jsonrpc]
                    c.ok("second connection, SDK default mode=auto: server/discover + echo with the held token",
                         not echo.is_error and "auto mode" in text_of(echo) and probe and probe[0].status == 200
                         and len(browser.authorizations) == auths_before
                         and not any(e.status in (401, 403) for e in REC[rec_before:]),
                         f"protocol={client2.protocol_version} discover={[e.status for e in probe]}")
            except Exception as err:
                c.ok("second connection, SDK default mode=auto", False, f"threw: {err!r}")
    finally:
        c.info("HTTP exchanges", " | ".join(
            f"{e.method} {urlparse(e.url).path}{'(' + ','.join(e.jsonrpc) + ')' if e.jsonrpc else ''} {e.status}" for e in REC))


STATE: dict[str, Any] = {}


def checks_after_connect(client: Client | None, server: str, browser: Browser, opaque: bool,
                         connect_error: BaseException | None) -> None:
    first401 = next((e for e in REC if e.method == "POST" and same_url(e.url, server) and e.status == 401), None)
    ch = parse_challenge(first401.www_authenticate if first401 else None)
    c.ok("401 received with WWW-Authenticate: Bearer resource_metadata=..., scope=...",
         first401 is not None and re.match(r"^Bearer\s", first401.www_authenticate or "", re.I) and ch.get("resource_metadata"),
         f"WWW-Authenticate: {first401.www_authenticate}" if first401 else "no 401 seen")
    c.ok("401 without a token carries no error code (RFC 6750 §3.1)", first401 is not None and "error" not in ch,
         f"error={ch.get('error')}")

    prm_get = next((e for e in REC if e.method == "GET" and ch.get("resource_metadata") and same_url(e.url, ch["resource_metadata"])), None)
    c.ok("resource_metadata followed (SDK fetched exactly the advertised PRM URL)", prm_get is not None,
         prm_get.url if prm_get else "PRM fetches: " + (", ".join(e.url for e in REC if "oauth-protected-resource" in e.url) or "none"))
    prm = prm_get.json if prm_get else None
    c.ok("PRM fetched: 200, resource = server URL, authorization_servers non-empty",
         prm_get is not None and prm_get.status == 200 and isinstance(prm, dict) and prm.get("resource") == server
         and isinstance(prm.get("authorization_servers"), list) and len(prm["authorization_servers"]) > 0,
         f"resource={prm.get('resource')} authorization_servers={json.dumps(prm.get('authorization_servers'))} scopes_supported={json.dumps(prm.get('scopes_supported'))}"
         if isinstance(prm, dict) else f"HTTP {prm_get.status if prm_get else None}")
    issuer = (prm or {}).get("authorization_servers", [None])[0] if isinstance(prm, dict) else None

    as_get = next((e for e in REC if e.method == "GET" and e.status == 200 and isinstance(e.json, dict) and e.json.get("issuer")
                   and re.search(r"/\.well-known/(oauth-authorization-server|openid-configuration)", e.url)), None)
    as_meta = as_get.json if as_get else None
    c.ok("AS metadata fetched (RFC 8414 path first), issuer matches PRM",
         as_meta is not None and as_meta.get("issuer") == issuer and "oauth-authorization-server" in as_get.url,
         f"{as_get.url} issuer={as_meta.get('issuer')}" if as_get else "none")

    reg = next((e for e in REC if e.method == "POST" and as_meta and same_url(e.url, as_meta.get("registration_endpoint"))), None)
    sent = {k: v for k, v in (reg.registration or {}).items() if k != "client_name"} if reg else None
    c.ok("dynamic client registration 201 (public client, loopback redirect)",
         reg is not None and reg.status == 201 and isinstance(reg.json, dict) and reg.json.get("client_id"),
         f"HTTP {reg.status} sent={json.dumps(sent)} {reg.error or ''}" if reg else "no registration request")

    a1 = browser.authorizations[0] if browser.authorizations else None
    c.ok("authorization: S256 PKCE, scope from the challenge, resource = PRM resource, code returned",
         a1 is not None and a1.code_challenge_method == "S256" and a1.has_code_challenge
         and set(split(ch.get("scope"))) <= set(split(a1.scope)) and a1.resource == [(prm or {}).get("resource")]
         and a1.got_code and not a1.error and a1.iss == issuer,
         f"scope={a1.scope} resource={json.dumps(a1.resource)} iss={a1.iss} hops={' -> '.join(a1.hops)} {a1.error or ''}"
         if a1 else "redirect_handler not called")
    if a1 and a1.scope != ch.get("scope"):
        c.info("requested scope", f"challenge scope={ch.get('scope')!r}, the SDK asked for {a1.scope!r} "
               "(SEP-2207: it adds offline_access when the AS supports it and the client registered refresh_token)")

    tok1 = next((e for e in REC if e.method == "POST" and as_meta and same_url(e.url, as_meta.get("token_endpoint"))
                 and e.form and e.form.get("grant_type") == "authorization_code"), None)
    c.ok("token: authorization_code grant 200, request carried resource + code_verifier",
         tok1 is not None and tok1.status == 200 and tok1.form["resource"] == [(prm or {}).get("resource")]
         and "code_verifier" in tok1.form["names"],
         f"HTTP {tok1.status} params={','.join(tok1.form['names'])} resource={json.dumps(tok1.form['resource'])} {tok1.error or ''}"
         if tok1 else "no token request")
    t1 = tok1.token if tok1 else None
    if opaque:
        c.ok("access token: opaque (as.mjs rule for */opaque-mcp), scope covers the challenge scope",
             t1 is not None and not t1["access_token_is_jwt"] and set(split(ch.get("scope"))) <= set(split(t1["scope"])),
             f"scope={t1['scope']} refresh_token={t1['has_refresh_token']}" if t1 else "none")
    else:
        c.ok("access token: JWT typ at+jwt, aud = resource, scope covers the challenge scope",
             t1 is not None and t1["access_token_is_jwt"] and t1.get("typ") == "at+jwt" and t1.get("aud") == (prm or {}).get("resource")
             and set(split(ch.get("scope"))) <= set(split(t1.get("jwt_scope"))),
             f"typ={t1.get('typ')} alg={t1.get('alg')} aud={json.dumps(t1.get('aud'))} scope={t1.get('jwt_scope')} refresh_token={t1['has_refresh_token']}"
             if t1 else "none")

    init = next((e for e in REC if e.jsonrpc and "initialize" in e.jsonrpc and e.status == 200), None)
    if client is None:
        c.ok("initialize", False, f"connect threw: {connect_error!r}")
    else:
        c.ok("initialize: 200 with the token", init is not None and init.has_authorization and client.server_info is not None,
             f"server={client.server_info.name if client.server_info else None} protocol={client.protocol_version}")
    STATE.update(ch=ch, prm=prm, as_meta=as_meta, tok1=tok1)


async def checks_tools(client: Client, server: str, browser: Browser, opaque: bool) -> None:
    prm = STATE["prm"] or {}
    tok1 = STATE["tok1"]
    try:
        tools = await client.list_tools()
        names = [t.name for t in tools.tools]
        c.ok("tools/list contains echo and write_note", "echo" in names and "write_note" in names, ", ".join(names))
    except Exception as err:
        c.ok("tools/list", False, f"threw: {err!r}")

    try:
        echo = await client.call_tool("echo", {"text": "hello interop"})
        c.ok("tools/call echo succeeds", not echo.is_error and "hello interop" in text_of(echo), json.dumps(text_of(echo)))
    except Exception as err:
        c.ok("tools/call echo", False, f"threw: {err!r}")

    # write_note with a token lacking mcp:write -> 403 insufficient_scope -> the SDK's step-up.
    auths_before = len(browser.authorizations)
    rec_before = len(REC)
    wn = None
    try:
        wn = await client.call_tool("write_note", {"note": "written after step-up"})
    except Exception as err:
        c.ok("tools/call write_note", False, f"threw: {err!r}")
    forbidden = next((e for e in REC[rec_before:] if e.status == 403 and e.tool == "write_note"), None)
    fch = parse_challenge(forbidden.www_authenticate if forbidden else None)
    c.ok('write_note with mcp:read only -> 403 error="insufficient_scope" naming mcp:write',
         forbidden is not None and fch.get("error") == "insufficient_scope" and "mcp:write" in split(fch.get("scope")),
         f"WWW-Authenticate: {forbidden.www_authenticate}" if forbidden else "no 403 seen")
    a2 = browser.authorizations[auths_before] if len(browser.authorizations) > auths_before else None
    c.ok("SDK step-up: new authorization requesting the challenge scope (with resource)",
         a2 is not None and set(split(fch.get("scope"))) <= set(split(a2.scope)) and a2.resource == [prm.get("resource")]
         and a2.got_code and not a2.error,
         f"scope={a2.scope} resource={json.dumps(a2.resource)} hops={' -> '.join(a2.hops)} {a2.error or ''}" if a2 else "no new authorization")
    tok2 = next((e for e in REC[rec_before:] if e.form and e.form.get("grant_type") == "authorization_code"), None)
    tok2_scope = (tok2.token or {}).get("scope" if opaque else "jwt_scope") if tok2 else None
    c.ok(f"step-up token has mcp:write{'' if opaque else ' and aud = resource'}",
         tok2 is not None and tok2.status == 200 and "mcp:write" in split(tok2_scope)
         and (opaque or (tok2.token or {}).get("aud") == prm.get("resource")),
         f"HTTP {tok2.status} scope={tok2_scope} resource={json.dumps(tok2.form['resource'])}" if tok2 else "no token request")
    if wn is not None:
        c.ok("tools/call write_note succeeds after step-up", not wn.is_error and "stored" in text_of(wn), json.dumps(text_of(wn)))

    rec_before2 = len(REC)
    try:
        echo2 = await client.call_tool("echo", {"text": "still readable"})
        extra = [e for e in REC[rec_before2:] if e.status in (401, 403)]
        c.ok("tools/call echo after step-up succeeds without another authorization",
             not echo2.is_error and "still readable" in text_of(echo2) and not extra,
             f"{json.dumps(text_of(echo2))} (SEP-2350 scope union kept mcp:read: token scope={tok2_scope})")
    except Exception as err:
        c.ok("tools/call echo after step-up", False, f"threw: {err!r}")

    after = [e for e in REC if tok1 and e.i > tok1.i and e.method == "POST" and same_url(e.url, server)]
    c.ok("every MCP POST after authorization carried Authorization", after and all(e.has_authorization for e in after),
         f"{len(after)} POSTs")


def main() -> int:
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--timeout", type=float, default=90.0)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose

    async def bounded() -> None:
        try:
            await asyncio.wait_for(run(args.server), timeout=args.timeout)
        except asyncio.TimeoutError:
            c.ok("finished within the overall timeout", False, f"{args.timeout:g}s")

    try:
        asyncio.run(bounded())
    except BaseException as err:  # noqa: BLE001 - any failure is a FAIL line
        if isinstance(err, KeyboardInterrupt):
            raise
        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        if isinstance(err, BaseExceptionGroup):
            detail += " :: " + "; ".join(repr(x) for x in err.exceptions)
        if VERBOSE:
            traceback.print_exc()
        c.ok("client flow ran to completion", False, detail)
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
