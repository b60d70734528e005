"""Run deploy/nginx/ttrpg-nodes.conf with Debian's nginx in front of two real bridge nodes.

Started by ``deploy/check-nginx.sh``. The configuration is used as shipped, with only its
ports rewritten to free ones: ``nginx -t`` first, then nginx serving two ``ttrpg-bridge``
nodes that share a fresh PostgreSQL database and a ``redis-server`` of this script's own.
Checks: /readyz answers through nginx, an account registered through nginx can open a
WebSocket through nginx and roll at a table, and requests reach both nodes. Exit 0 when all
hold.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "bridge"))

import httpx  # noqa: E402
from bridge_process import free_port, run_bridge  # noqa: E402
from cluster import cluster_env, postgres_database, redis_server  # noqa: E402

from ttrpg_mcp.client import BridgeClient  # noqa: E402

CONF = ROOT / "deploy" / "nginx" / "ttrpg-nodes.conf"


def nginx_config(folder: Path, listen: int, nodes: list[int]) -> Path:
    site = CONF.read_text()
    ports = iter(nodes)
    site = re.sub(r"server 127\.0\.0\.1:\d+", lambda _match: f"server 127.0.0.1:{next(ports)}", site)
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    (folder / "site.conf").write_text(site)
    main = folder / "nginx.conf"
    main.write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log {folder}/access.log;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  include {folder}/site.conf;\n}}\n"
    )
    return main


async def exercise(base_url: str) -> None:
    async with BridgeClient(base_url) as client:
        await client.register("nginx-check", "password123")
        campaign = await client.create_campaign("Behind nginx")
        async with client.connect(transport="websocket", campaign_id=campaign["id"]) as table:
            rolled = await table.roll_dice("1d20", purpose="through nginx")
            assert 1 <= rolled["total"] <= 20, rolled


def main() -> int:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with postgres_database() as database_url, redis_server(folder) as redis:
            env = cluster_env(database_url, redis.url)
            (folder / "a").mkdir()
            (folder / "b").mkdir()
            with run_bridge(folder / "a", env) as first, run_bridge(folder / "b", env) as second:
                listen = free_port()
                config = nginx_config(folder, listen, [first.port, second.port])
                prefix = ["-p", str(folder), "-c", str(config)]
                subprocess.run([nginx, "-t", *prefix], check=True)  # noqa: S603
                server = subprocess.Popen([nginx, *prefix, "-g", "daemon off;"])  # noqa: S603
                try:
                    base_url = f"http://127.0.0.1:{listen}"
                    for _attempt in range(100):
                        try:
                            if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        time.sleep(0.1)
                    for _round in range(6):  # round robin: both nodes answer
                        assert httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
                    asyncio.run(exercise(base_url))
                    served = [node.log().count('"path": "/readyz"') for node in (first, second)]
                    assert all(count > 0 for count in served), f"a node got no request: {served}"
                finally:
                    server.terminate()
                    server.wait(10)
    print("nginx configuration checked: syntax, /readyz, WebSocket, both nodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
