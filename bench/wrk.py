"""`wrk` as the load generator: installing it, the Lua scripts, one run and its figures.

Shopify signs only the body, so the signatures are computed here once per body and the Lua script
gives every request a fresh `X-Shopify-Webhook-Id` (and event id): `<run>-<thread>-<n>`, unique
across threads (each wrk thread numbers its own requests) and across runs (each run has a prefix).
`done()` prints one JSON line with the counts and latency percentiles, read back by `run()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from timedify.ingest import webhooks
from timedify.testing import API_VERSION, sample_payload

SHOP = "bench-shop.myshopify.com"
_MARK = "BENCH_RESULT "

_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\\n',
    "BENCH_RESULT ", summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""

_WEBHOOKS = """
local hooks = {
%(hooks)s
}
local prefix = "%(prefix)s"
local n = 0
local threads = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function request()
  n = n + 1
  -- Threads start far apart in the list, so they do not send the same shop at the same time.
  local hook = hooks[((n + tid * 907) %% #hooks) + 1]
  local id = prefix .. "-" .. tid .. "-" .. n
  return wrk.format("POST", hook.path, {
    ["Content-Type"] = "application/json",
    ["X-Shopify-Topic"] = hook.topic,
    ["X-Shopify-Hmac-Sha256"] = hook.hmac,
    ["X-Shopify-Webhook-Id"] = id,
    ["X-Shopify-Event-Id"] = id,
    ["X-Shopify-Shop-Domain"] = hook.shop,
    ["X-Shopify-Triggered-At"] = "2026-11-27T10:00:00+00:00",
    ["X-Shopify-Api-Version"] = "%(api_version)s",
  }, hook.body)
end
"""


@dataclass(frozen=True)
class Hook:
    """One signed webhook: the script sends it, with fresh ids, in its turn."""

    topic: str
    shop: str
    body: bytes
    hmac: str

    @property
    def path(self) -> str:
        return f"/webhooks/{self.topic}"


def signed(topic: str, shop: str, payload: object, secret: str) -> Hook:
    """`payload` as Shopify would send it for `topic` and `shop`, signed with `secret`."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Hook(topic, shop, body, webhooks.sign(body, secret.encode()))


@dataclass(frozen=True)
class Result:
    """One wrk run: throughput, latency percentiles (ms) and every kind of error."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors (connect/read/write/timeout)
    non_2xx: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (Debian package)...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(install, env=env, check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is missing: `sudo apt-get install -y wrk`")
    return found


def _lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def webhook_script(directory: Path, secret: str, prefix: str) -> Path:
    """A Lua script sending signed webhooks of every topic, each with a unique webhook id."""
    hooks = [signed(t, SHOP, sample_payload(t, SHOP), secret) for t in webhooks.TOPICS]
    return hooks_script(directory / f"webhooks-{prefix}.lua", hooks, prefix)


def hooks_script(path: Path, hooks: list[Hook], prefix: str) -> Path:
    """A Lua script sending `hooks` in turn, each request with ids `<prefix>-<thread>-<n>`."""
    rows = [
        f'  {{path = "{h.path}", topic = "{h.topic}", shop = "{h.shop}", hmac = "{h.hmac}", '
        f"body = {_lua_string(h.body)}}},"
        for h in hooks
    ]
    text = _WEBHOOKS % {"hooks": "\n".join(rows), "prefix": prefix, "api_version": API_VERSION}
    return write_script(path, text)


def write_script(path: Path, text: str) -> Path:
    """Write a Lua script that reports like the others (`done()` prints the result line)."""
    path.write_text(text + _DONE)
    return path


def get_script(directory: Path) -> Path:
    """A Lua script for plain GETs (the path comes from the URL) that reports like the others."""
    path = directory / "get.lua"
    path.write_text(_DONE)
    return path


def run(
    url: str, script: Path, *, connections: int, seconds: float, threads: int | None = None
) -> Result:
    """One wrk run; `threads` defaults to one per connection up to two (the machine's cores)."""
    threads = threads or min(connections, 2)
    cmd = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60)
    line = next((x for x in out.stdout.splitlines() if x.startswith(_MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {out.stdout} {out.stderr}")
    raw = json.loads(line[len(_MARK) :])
    return Result(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50"] / 1000,
        p90_ms=raw["p90"] / 1000,
        p99_ms=raw["p99"] / 1000,
        max_ms=raw["max"] / 1000,
        errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        non_2xx=raw["status"],
    )
