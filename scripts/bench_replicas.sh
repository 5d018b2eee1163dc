#!/usr/bin/env bash
# Throughput and added latency of 1, 2 and 3 replicas on the loopback upstream, each with
# its own SQLite books and then all sharing one PostgreSQL (Debian's, started here in a
# temporary directory with default durability, and removed afterwards). Extra arguments go
# to `conductor bench gateway` (e.g. --budgeted, --seconds 10, --concurrency 64).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL server not found: run bash scripts/setup.sh" >&2; exit 1; }
[ -x target/release/conductor ] || cargo build --release -p conductor
dir="$(mktemp -d)"
run=()
# initdb refuses to run as root: the server then runs as Debian's postgres user.
if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; run=(runuser -u postgres --); fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${run[@]}" "$bin/initdb" -U conductor --auth=trust -E UTF8 -D "$dir/data" >/dev/null
stop() { "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap stop EXIT
"${run[@]}" "$bin/pg_ctl" -D "$dir/data" -w -l "$dir/postgres.log" \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($(nproc) cores here)"
target/release/conductor bench gateway --replicas 1,2,3 --store-url "postgres://conductor@127.0.0.1:$port/postgres" "$@"
