#!/usr/bin/env python3
"""Prints the medians and ratios of the last criterion run (or of a saved baseline) as Markdown tables.

    python3 benches/report.py            # the last run ("new")
    python3 benches/report.py before     # a baseline saved with `-- --save-baseline before`

Reads target/criterion/<group>/<bench>/<baseline>/estimates.json; benches that were not run are left out.
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")
BASELINE = sys.argv[1] if len(sys.argv) > 1 else "new"


def median(*path):
    """Median in nanoseconds, or None."""
    name = os.path.join(ROOT, *path, BASELINE, "estimates.json")
    try:
        with open(name) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.3f}×"


def table(header, rows):
    rows = [r for r in rows if any(c not in ("–", "") for c in r[1:])]
    if not rows:
        return
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()


print(f"baseline: {BASELINE}\n")

try:
    with open(os.path.join(ROOT, "paired.json")) as f:
        PAIRED = json.load(f)
except (OSError, ValueError):
    PAIRED = {}


def paired(name):
    value = PAIRED.get(name)
    return "–" if value is None else f"{value:.3f}×"

rows = []
for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"]:
    g = f"verify_{alg}"
    floor, jwt, hit, bad = (median(g, b) for b in ["floor", "jwt_validator", "cache_hit", "bad_signature"])
    rows.append([alg, fmt(floor), fmt(jwt), ratio(jwt, floor), paired(f"verify/{alg}"), fmt(hit),
                 fmt(bad) if bad else ""])
table(["alg", "floor (aws-lc-rs)", "JwtValidator, cache off", "ratio of medians", "paired ratio (last run)",
       "cache hit", "bad signature"], rows)

rows = []
one = median("key_set", "1")
for n in ["1", "10", "100"]:
    m = median("key_set", n)
    rows.append([n, fmt(m), ratio(m, one)])
table(["keys in the set", "JwtValidator (EdDSA), cache off", "vs 1 key"], rows)

rows = []
for size in ["512", "1024", "2048", "4096", "8192"]:
    floor, jwt, hit = (median("token_size", b, size) for b in ["floor", "jwt_validator", "cache_hit"])
    rows.append([size, fmt(floor), fmt(jwt), ratio(jwt, floor), paired(f"token_size/{size}"), fmt(hit)])
table(["token bytes", "floor (ES256)", "JwtValidator, cache off", "ratio of medians", "paired ratio (last run)",
       "cache hit"], rows)

base = median("layer", "unguarded")
hit = median("layer", "jwt_cache_hit")
rows = []
for s in ["unguarded", "jwt_cache_hit", "first_match_cache_hit", "jwt_cache_miss", "static_token", "reject_no_token",
          "reject_malformed", "reject_wrong_issuer", "reject_bad_signature"]:
    m = median("layer", s)
    over = "–" if m is None or base is None else f"{(m - base) / 1e3:+.3f} µs"
    rows.append([s, fmt(m), over, ratio(m, hit)])
table(["layer (oneshot)", "median", "over unguarded", "vs cache hit"], rows)

rows = []
for s in ["unguarded", "jwt_cache_hit", "first_match_cache_hit", "jwt_cache_miss", "reject_no_token"]:
    one, two = median("threads", s, "1"), median("threads", s, "2")
    rows.append([s, fmt(one), fmt(two), ratio(one, two)])
table(["threads sharing one guard", "1 thread, per request", "2 threads, per request", "speed-up"], rows)

rows = []
for s in ["cache_hit", "call", "coalesce_64"]:
    rows.append([s, fmt(median("introspection", s))])
table(["introspection", "median"], rows)
