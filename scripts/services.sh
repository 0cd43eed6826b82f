#!/usr/bin/env bash
# Starts (or stops) the real servers the tests use, on loopback, under .cache/services.
#   scripts/services.sh start   -> prints `export VAR=...` lines for the test environment
#   scripts/services.sh stop
# PostgreSQL runs as a private cluster owned by the postgres user (it refuses to run as root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${CONVOSPHERE_SERVICES_DIR:-$root/.cache/services}
pg_port=${CONVOSPHERE_TEST_PG_PORT:-55432}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)

log() { echo "services: $*" >&2; }

start_postgres() {
	if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
		log "PostgreSQL is not installed: run scripts/install-deps.sh (apt-get install postgresql)"
		exit 1
	fi
	local dir=$state/postgres
	mkdir -p "$state"
	if [ ! -f "$dir/PG_VERSION" ]; then
		mkdir -p "$dir"
		chown postgres:postgres "$dir" 2>/dev/null || true
		chmod 700 "$dir"
		runuser -u postgres -- "$pg_bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >"$state/initdb.log" 2>&1 ||
			{ cat "$state/initdb.log" >&2; exit 1; }
	fi
	if ! runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" -w -t 30 \
			-o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			-l "$dir/log" start >/dev/null || { tail -n 20 "$dir/log" >&2; exit 1; }
	fi
	for _ in $(seq 1 50); do
		"$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q && break
		sleep 0.2
	done
	"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='convosphere_test'" | grep -q 1 ||
		"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres convosphere_test
	echo "export CONVOSPHERE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$pg_port/convosphere_test?sslmode=disable"
}

stop_postgres() {
	local dir=$state/postgres
	[ -n "$pg_bin" ] && [ -f "$dir/PG_VERSION" ] || return 0
	runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-start}" in
start) start_postgres ;;
stop) stop_postgres ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
