#!/usr/bin/env bash
# Starts (or stops) the real servers the tests use, on loopback, under .cache/services:
# PostgreSQL, Redis, Weaviate (scripts/weaviate.sh) and Mattermost (scripts/mattermost.sh); the
# last two are built on first use, about 5 minutes each. It also installs the MCP servers
# from npm that the tool tests run (scripts/mcp-servers.sh).
#   scripts/services.sh start      -> prints `export VAR=...` lines for the test environment
#   scripts/services.sh stop
#   scripts/services.sh postgres   -> PostgreSQL only (scripts/mattermost.sh uses it)
#   scripts/services.sh redis      -> Redis only
# PostgreSQL runs as a private cluster owned by the postgres user (it refuses to run as root).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${CONVOSPHERE_SERVICES_DIR:-$root/.cache/services}
pg_port=${CONVOSPHERE_TEST_PG_PORT:-}
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)

log() { echo "services: $*" >&2; }

# listening PORT: is something accepting connections on 127.0.0.1:PORT?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# choose_port: the port this checkout's cluster uses; a free one from 25432 up
# (below the ephemeral range 32768-60999, which outgoing connections use)
# the first time (another checkout's cluster may hold 25432), then the same.
choose_port() {
	local file=$state/postgres.port
	if [ -n "$pg_port" ]; then
		return
	fi
	if [ -s "$file" ]; then
		pg_port=$(cat "$file")
		return
	fi
	for p in $(seq 25432 25531); do
		if ! listening "$p"; then
			pg_port=$p
			break
		fi
	done
	[ -n "$pg_port" ] || { log "no free port in 25432-25531 for PostgreSQL"; exit 1; }
	mkdir -p "$state"
	echo "$pg_port" >"$file"
}

start_postgres() {
	if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
		log "PostgreSQL is not installed: run scripts/install-deps.sh (apt-get install postgresql)"
		exit 1
	fi
	local dir=$state/postgres
	mkdir -p "$state"
	if [ -z "$pg_port" ] && [ -s "$dir/postmaster.pid" ] && runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		pg_port=$(sed -n 4p "$dir/postmaster.pid") # already running: keep its port
	fi
	choose_port
	if [ ! -f "$dir/PG_VERSION" ]; then
		mkdir -p "$dir"
		chown postgres:postgres "$dir" 2>/dev/null || true
		chmod 700 "$dir"
		runuser -u postgres -- "$pg_bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >"$state/initdb.log" 2>&1 ||
			{ cat "$state/initdb.log" >&2; exit 1; }
	fi
	if ! runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
		if listening "$pg_port"; then
			log "port $pg_port is taken by another program: set CONVOSPHERE_TEST_PG_PORT to a free port"
			exit 1
		fi
		runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" -w -t 30 \
			-o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			-l "$dir/log" start >/dev/null || { tail -n 20 "$dir/log" >&2; exit 1; }
	fi
	for _ in $(seq 1 50); do
		"$pg_bin/pg_isready" -h 127.0.0.1 -p "$pg_port" -q && break
		sleep 0.2
	done
	local db
	for db in convosphere_test mattermost_test; do # mattermost_test: scripts/mattermost.sh
		"$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
			"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres "$db"
	done
	echo "export CONVOSPHERE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$pg_port/convosphere_test?sslmode=disable"
}

stop_postgres() {
	local dir=$state/postgres
	[ -n "$pg_bin" ] && [ -f "$dir/PG_VERSION" ] || return 0
	runuser -u postgres -- "$pg_bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
}

# start_redis: a private Redis without persistence on a free port from 26379 up.
start_redis() {
	if ! command -v redis-server >/dev/null 2>&1; then
		log "Redis is not installed: run scripts/install-deps.sh (apt-get install redis-server)"
		exit 1
	fi
	local dir=$state/redis port=""
	mkdir -p "$dir"
	if [ -s "$dir/port" ] && redis-cli -h 127.0.0.1 -p "$(cat "$dir/port")" ping >/dev/null 2>&1; then
		port=$(cat "$dir/port") # already running
	else
		for p in $(seq 26379 26478); do
			if ! listening "$p"; then
				port=$p
				break
			fi
		done
		[ -n "$port" ] || { log "no free port in 26379-26478 for Redis"; exit 1; }
		redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" \
			--pidfile "$dir/redis.pid" --logfile "$dir/log" --save "" --appendonly no >/dev/null ||
			{ tail -n 20 "$dir/log" >&2; exit 1; }
		echo "$port" >"$dir/port"
		for _ in $(seq 1 50); do
			redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	echo "export CONVOSPHERE_TEST_REDIS_URL=redis://127.0.0.1:$port/0"
}

stop_redis() {
	local dir=$state/redis
	[ -s "$dir/port" ] || return 0
	redis-cli -h 127.0.0.1 -p "$(cat "$dir/port")" shutdown nosave >/dev/null 2>&1 || true
	rm -f "$dir/port"
}

case "${1:-start}" in
start)
	start_postgres
	start_redis
	"$root/scripts/weaviate.sh" start
	"$root/scripts/mattermost.sh" start
	"$root/scripts/mcp-servers.sh"
	;;
postgres) start_postgres ;;
redis) start_redis ;;
stop)
	"$root/scripts/mattermost.sh" stop # before its database
	stop_postgres
	stop_redis
	"$root/scripts/weaviate.sh" stop
	;;
*) echo "usage: $0 start|stop|postgres|redis" >&2; exit 2 ;;
esac
