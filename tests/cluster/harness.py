"""Several `handoff serve` instances on one throwaway PostgreSQL database, behind Debian's nginx rendered from
`deploy/nginx/handoff.conf`, with Twilio's REST API faked in the test process. Everything on loopback.

nginx logs which instance served each request (`$upstream_addr`), so a test can say where the webhook, the
stream and the action went. Instances are real subprocesses: a test may kill -9 or SIGTERM one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.test_kill import free_port, wait_healthy
from tests.telephony.server.harness import API, AUTH, HEADERS

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "handoff.conf"
NGINX_ENV = "HANDOFF_NGINX"  # an explicit nginx binary
REQUIRE_ENV = "HANDOFF_REQUIRE_NGINX"


def find_nginx() -> Path | None:
    explicit = os.environ.get(NGINX_ENV)
    for candidate in (explicit, "/usr/sbin/nginx", shutil.which("nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def require_nginx() -> Path:
    found = find_nginx()
    if found is None:
        reason = "no nginx here: install Debian's nginx (`bash scripts/bootstrap.sh test` does) or set HANDOFF_NGINX"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 and {reason}")
        pytest.skip(reason)
    return found


class Instance:
    """One `handoff serve` on loopback, on the shared database, with a data folder of its own."""

    def __init__(
        self, name: str, work: Path, database_url: str, twilio: tuple[str, str], tts_dir: Path,
        command: str = "serve", **env: str,
    ) -> None:  # fmt: skip
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data_dir = work / name
        data_dir.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
        environment.update({
            "HANDOFF_PORT": str(self.port), "HANDOFF_ASR": "oracle", "HANDOFF_TWILIO_AUTH_TOKEN": AUTH,
            "HANDOFF_API_TOKEN": API, "HANDOFF_TTS_CACHE_DIR": str(tts_dir), "HANDOFF_DATA_DIR": str(data_dir),
            "HANDOFF_DATABASE_URL": database_url, "HANDOFF_TWILIO_API_BASE_URL": twilio[0],
            "HANDOFF_TWILIO_ACCOUNT_SID": twilio[1],
            "HANDOFF_FIXED_NOW": "2026-11-24T15:00:00Z", "HANDOFF_REST_TRANSFERS": "false",
            "PYTHONPATH": str(ROOT), **env,
        })  # fmt: skip
        self.log = work / f"{name}.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "telephony.cli", command], env=environment, cwd=data_dir,
            stdout=self._log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_up(self, timeout_s: float = 180) -> None:
        wait_healthy(self.base, self.process, self.log, self.name, timeout_s)

    def live_calls(self) -> int:
        """Calls with a media stream open on this instance (its Prometheus gauge)."""
        text = httpx.get(self.base + "/metrics", headers=HEADERS, timeout=2).text
        found = re.search(r"^handoff_calls_active (\S+)$", text, re.MULTILINE)
        return int(float(found.group(1))) if found else 0

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log_file.close()


@dataclass
class Request:
    """One line of nginx's access log: which instance served what."""

    method: str
    uri: str
    status: int
    upstream: str


class Nginx:
    """Debian's nginx with `deploy/nginx/handoff.conf`: its upstream and listen lines pointed at loopback."""

    def __init__(self, binary: Path, work: Path, upstreams: list[str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.prefix = work / "nginx"
        self.prefix.mkdir(parents=True, exist_ok=True)
        site = SITE.read_text()
        servers = "".join(f"    server {u} max_fails=1 fail_timeout=5s;\n" for u in upstreams)
        site, replaced = re.subn(r"(upstream handoff \{\n(?:    #.*\n)?)(?:    server .*\n)+", rf"\g<1>{servers}", site)
        assert replaced == 1, "deploy/nginx/handoff.conf: no upstream block to point at the instances"
        site, replaced = re.subn(r"^    listen 80;$", f"    listen 127.0.0.1:{self.port};", site, flags=re.MULTILINE)
        assert replaced == 1, "deploy/nginx/handoff.conf: no `listen 80;` line"
        (self.prefix / "handoff.conf").write_text(site)
        self.access_log = self.prefix / "access.log"
        temp = {name: self.prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
        main = f"""
user root;
worker_processes 1;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log info;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}  # two per call through nginx, and the webhooks
http {{
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log {self.access_log} upstreams;
    client_body_temp_path {temp["body"]}; proxy_temp_path {temp["proxy"]}; fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]}; scgi_temp_path {temp["scgi"]};
    include {self.prefix}/handoff.conf;
}}
"""
        (self.prefix / "nginx.conf").write_text(main)
        self.process = subprocess.Popen(
            [str(binary), "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=(self.prefix / "stderr.log").open("w"),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.base + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("nginx did not start: " + (self.prefix / "stderr.log").read_text()) from None
                time.sleep(0.05)

    def requests(self) -> list[Request]:
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        out = []
        for line in lines:
            method, uri, status, upstream = line.split(" ", 3)
            out.append(Request(method, uri, int(status), upstream))
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
