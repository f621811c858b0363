#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ (made anew each time).

    python3 fuzz/seeds.py

Each seed is a small, meaningful input the target's input format describes (see each target's docs):
valid cases first (so the fuzzer starts from acceptance, where the oracles bite), then the classic
attacks of each format. Nothing here is secret: the keys live in the targets.
"""
import base64
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ISSUER = "https://auth.example.com"
RESOURCE = "https://mcp.example.com/mcp"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def j(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def write(target: str, seeds):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    for i, seed in enumerate(seeds):
        with open(os.path.join(folder, f"seed-{i:03}"), "wb") as f:
            f.write(seed)


def layer_authorization():
    token = b"fuzz-valid-token-0123456789abcdef"
    return [
        b"Bearer " + token,
        b"bearer " + token,
        b"BEARER " + token,
        b"Bearer  " + token,
        b"Bearer " + token + b" ",
        b"Bearer " + token + b"\x00Bearer " + token,
        b"Bearer " + token + b", Bearer other",
        b"Basic dXNlcjpwYXNz",
        b"Bearer",
        b"Bearer ",
        b"Bearer a b",
        b"Bearer " + token + b"==",
        b"Bearer " + token[:-1],
        b"DPoP " + token,
        b"",
    ]


def claims(**extra):
    base = {"iss": ISSUER, "aud": RESOURCE, "sub": "u", "exp": 4000000000, "iat": 1700000000,
            "scope": "mcp:read"}
    base.update(extra)
    return base


def jwt_validator():
    header = {"alg": "EdDSA", "typ": "at+jwt", "kid": "fuzz-ed25519"}
    payloads = [
        claims(),
        claims(aud=[RESOURCE, "https://other"]),
        claims(exp=4000000000.5),
        claims(exp=1),
        claims(nbf=4000000000),
        claims(iss="https://auth.example.com/"),
        claims(aud="https://other"),
        claims(cnf={"jkt": "abc"}),
        claims(scp=["a", "b"], client_id="c"),
    ]
    headers = [
        header,
        {"alg": "EdDSA", "typ": "application/at+jwt", "kid": "fuzz-ed25519"},
        {"alg": "EdDSA", "typ": "JWT", "kid": "fuzz-ed25519"},
        {"alg": "none", "typ": "at+jwt"},
        {"alg": "HS256", "typ": "at+jwt", "kid": "fuzz-ed25519"},
        {"alg": "EdDSA", "typ": "at+jwt", "kid": "fuzz-ed25519", "crit": ["exp"]},
        {"alg": "EdDSA", "typ": "at+jwt", "jku": "https://evil/jwks"},
        {"alg": "EdDSA", "typ": "at+jwt"},
    ]
    seeds = [b"\x01" + j(p) for p in payloads]
    seeds += [b"\x02" + j(h) for h in headers]
    seeds.append(b"\x01" + b'{"iss":"https://auth.example.com","iss":"https://evil","aud":"' + RESOURCE.encode()
                 + b'","exp":4000000000}')
    seeds.append(b"\x03" + j(header) + b"\n" + j(claims()))
    seeds.append(b"\x00" + f"{b64(j(header))}.{b64(j(claims()))}.AAAA".encode())
    seeds.append(b"\x00" + b"not.a.jwt")
    return seeds


def jwks_document():
    ok = {"kty": "OKP", "crv": "Ed25519", "x": "X", "kid": "k"}
    return [j(d) for d in [
        {"keys": [ok]},
        {"keys": [dict(ok, alg="EdDSA", use="sig")]},
        {"keys": [dict(ok, use="enc")]},
        {"keys": [dict(ok, d="AAAA")]},
        {"keys": [dict(ok, key_ops=["sign"])]},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]},
        {"keys": [ok, dict(ok, kid="k")]},
        {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "k"}]},
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "k"}]},
        {"keys": []},
        {"keys": {}},
        [],
    ]]


def introspection_answer():
    good = {"active": True, "aud": RESOURCE, "scope": "mcp:read", "sub": "u", "exp": 4000000000}
    bodies = [
        good,
        dict(good, aud=[RESOURCE, "x"]),
        dict(good, active="true"),
        dict(good, aud="https://other"),
        dict(good, cnf={"jkt": "abc"}),
        dict(good, token_type="DPoP"),
        dict(good, exp=1),
        {"active": False},
        {"error": "unsupported_token_type"},
        {"error": "invalid_client"},
    ]
    seeds = [b"\x00" + j(b) for b in bodies]
    seeds += [b"\x05" + j({"error": "unsupported_token_type"}), b"\x06" + j(good), b"\x07" + j(good)]
    seeds.append(b"\x00" + b'{"active":true,"active":false,"aud":"' + RESOURCE.encode() + b'"}')
    return seeds


def mcp_body():
    def seed(body, method=b"", name=b"", flags=0):
        return bytes([flags, len(method)]) + method + bytes([len(name)]) + name + body

    call = lambda name: j({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}})
    return [
        seed(call("echo")),
        seed(call("write")),
        seed(call("echo"), b"tools/call", b"echo", 3),
        seed(call("write"), b"tools/list", b"echo", 3),
        seed(call("echo"), flags=7 << 2),
        seed(b'{"method":"tools/call","params":{"name":"echo","name":"write"}}'),
        seed(b'{"method":"tools/call","params":{"name":"echo","NAME":"write"}}'),
        seed(b'{"method":"tools/list","Method":"tools/call","params":{"name":"write"}}'),
        seed(b'{"method":"tools/list","param\xc5\xbf":{"name":"write"}}'),
        seed(j({"method": "resources/read", "params": {"uri": "secret://x"}})),
        seed(j({"method": "prompts/get", "params": {"name": "draft"}})),
        seed(j({"method": "admin/reset"})),
        seed(j([{"method": "ping"}, {"method": "tools/call", "params": {"name": "write"}}])),
        seed(b'{"method":"tools\\/call","params":{"name":"wr\\u0069te"}}'),
        seed(b"[]"),
        seed(b"{"),
    ]


def dpop_proof():
    header = {"typ": "dpop+jwt", "alg": "EdDSA", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "X"}}
    claims = {"jti": "j1", "htm": "POST", "htu": "HTU", "iat": "NOW", "ath": "ATH"}
    seed = lambda h, c: j(h) + b"\x00" + j(c)
    return [
        seed(header, claims),
        seed(header, {**claims, "jti": "j2", "htu": "HTTPS://MCP.example.com:443/mcp?q#f"}),
        seed(header, {**claims, "jti": "j3", "nonce": "n", "content_digest": "sha-256=:AAAA:"}),
        seed({**header, "typ": "jwt"}, {**claims, "jti": "j4"}),
        seed({**header, "alg": "none"}, {**claims, "jti": "j5"}),
        seed({**header, "jwk": {**header["jwk"], "d": "X"}}, {**claims, "jti": "j6"}),
        seed({**header, "crit": ["exp"]}, {**claims, "jti": "j7"}),
        seed(header, {**claims, "jti": "j8", "htm": "GET"}),
        seed(header, {**claims, "jti": "j9", "iat": 1}),
        seed(header, {**claims, "jti": "j1"}),
        b'{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"X"}}\x00'
        + j({**claims, "jti": "j10"}),
        b"eyJhbGciOiJub25lIn0.e30.",
    ]


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    write("layer_authorization", layer_authorization())
    write("jwt_validator", jwt_validator())
    write("jwks_document", jwks_document())
    write("introspection_answer", introspection_answer())
    write("mcp_body", mcp_body())
    write("dpop_proof", dpop_proof())
    print(f"seed corpora written to {CORPUS}")


if __name__ == "__main__":
    main()
