#!/usr/bin/env bash
# Check deploy/nginx/ttrpg-nodes.conf with Debian's nginx: the syntax (nginx -t), then a real
# run in front of two ttrpg-bridge nodes on one PostgreSQL database and one Redis: /readyz
# through nginx, a WebSocket upgrade through nginx, and requests reaching both nodes.
# Needs: nginx (apt-get install -y nginx), redis-server, PostgreSQL on 127.0.0.1:5432 (trust).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
exec "$root/.venv/bin/python" "$here/check_nginx.py" "$@"
