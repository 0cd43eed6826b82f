#!/usr/bin/env bash
# Builds, starts and stops the Mattermost server the tests use: Mattermost 6.7.2 (API v4,
# websocket at /api/v4/websocket; no web client, the API is all a bot test needs), on
# loopback, with its data and config under .cache/services/mattermost of this checkout and
# its database `mattermost_test` in the PostgreSQL cluster of scripts/services.sh (started
# here when it is not running).
#   scripts/mattermost.sh build   build mattermost (2-5 minutes) unless it is there
#   scripts/mattermost.sh start   build if needed, start, wait until ready, print `export VAR=...`
#   scripts/mattermost.sh stop    stop the server this checkout started
#   scripts/mattermost.sh reset   stop it and delete its database and files: the next start
#                                 is a fresh server, whose first user becomes the admin
# Environment:
#   CONVOSPHERE_MATTERMOST_BIN    the mattermost binary, with i18n/, templates/ and fonts/ beside
#                                 it (default ~/.cache/convosphere/mattermost-v6.7.2/mattermost)
#   CONVOSPHERE_SERVICES_DIR      state directory (default .cache/services of the checkout)
#   CONVOSPHERE_MATTERMOST_PORT   HTTP port (default: a free one from 28065 up)
# The first user created (POST /api/v4/users) becomes the system admin; bot accounts and
# personal access tokens are enabled. The server may call integrations on 127.0.0.0/8
# (AllowedUntrustedInternalConnections), so the approval-button tests serve the bot's
# /mattermost/actions on loopback. The data outlives stop and start (not reset). Every
# command is idempotent: start on a running server prints its address again, stop on a
# stopped one does nothing.
set -euo pipefail

version=v6.7.2
module=github.com/mattermost/mattermost-server/v6
root=$(cd "$(dirname "$0")/.." && pwd)
state=${CONVOSPHERE_SERVICES_DIR:-$root/.cache/services}
bin=${CONVOSPHERE_MATTERMOST_BIN:-$HOME/.cache/convosphere/mattermost-$version/mattermost}
dir=$state/mattermost
pidfile=$state/mattermost.pid
portfile=$state/mattermost.port
logfile=$state/mattermost.log

log() { echo "mattermost: $*" >&2; }

# listening PORT: is something accepting connections on 127.0.0.1:PORT?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ready PORT: does Mattermost on PORT answer its health check?
ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/api/v4/system/ping" 2>/dev/null; }

# running: is the server recorded in the pid file alive (and ours)?
running() {
	local pid
	[ -s "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	kill -0 "$pid" 2>/dev/null || return 1
	# A pid reused by another program after a crash is not ours.
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 | grep -qF "$(basename "$bin")" || return 1
}

# build: the module's vendor/ holds only modules.txt, so build from a writable copy of
# the module without it, resolving dependencies through the module proxy. The server reads
# i18n/, templates/ and fonts/ from beside its binary, so they are installed with it.
build() {
	if [ -x "$bin" ]; then
		return
	fi
	command -v go >/dev/null || { log "go is not installed: it is needed to build mattermost"; exit 1; }
	local dest tmp info src
	dest=$(dirname "$bin")
	mkdir -p "$dest"
	tmp=$(mktemp -d "$dest/.build.XXXXXX")
	trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
	log "building mattermost $version into $dest (2-5 minutes on 2 cores)"
	info=$(cd "$tmp" && GOFLAGS='' GOWORK=off go mod download -json "$module@$version") ||
		{ log "go mod download $module@$version failed: $info"; exit 1; }
	src=$(echo "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	if [ -z "$src" ] || [ ! -d "$src" ]; then
		log "go mod download $module@$version gave no directory: $info"
		exit 1
	fi
	cp -R "$src" "$tmp/src"
	chmod -R u+w "$tmp/src"
	rm -rf "$tmp/src/vendor"
	(cd "$tmp/src" && GOFLAGS='' GOWORK=off go build -mod=mod -ldflags=-checklinkname=0 -o "$tmp/mattermost" ./cmd/mattermost) ||
		{ log "building mattermost $version failed (the errors are above)"; exit 1; }
	local d
	for d in i18n templates fonts; do
		rm -rf "${dest:?}/$d"
		mv "$tmp/src/$d" "$dest/$d"
	done
	mv "$tmp/mattermost" "$bin" # last: its presence means the build is complete
	rm -rf "$tmp"
	trap - EXIT
	log "built $bin"
}

# choose_port sets port: the same one as last time when it is still free, else the
# first free one from 28065 up (another checkout's server may hold 28065), below
# Weaviate's ports (28080 up) and below Linux's ephemeral range (32768-60999), where
# outgoing connections could hold a port we want to listen on.
choose_port() {
	port=""
	if [ -n "${CONVOSPHERE_MATTERMOST_PORT:-}" ]; then
		port=$CONVOSPHERE_MATTERMOST_PORT
		! listening "$port" ||
			{ log "port $port is taken: set CONVOSPHERE_MATTERMOST_PORT to another port"; exit 1; }
	elif [ -s "$portfile" ] && ! listening "$(cat "$portfile")"; then
		port=$(cat "$portfile")
	else
		local p
		for p in $(seq 28065 28079); do
			if ! listening "$p"; then
				port=$p
				break
			fi
		done
		[ -n "$port" ] || { log "no free port in 28065-28079 for Mattermost: set CONVOSPHERE_MATTERMOST_PORT"; exit 1; }
	fi
	mkdir -p "$state"
	echo "$port" >"$portfile"
}

# postgres_server: postgres://USER@HOST:PORT of the PostgreSQL cluster of
# scripts/services.sh, which starts the cluster (if needed) and creates the
# mattermost_test database in it.
postgres_server() {
	local env
	env=$("$root/scripts/services.sh" postgres) ||
		{ log "PostgreSQL did not start (scripts/services.sh postgres); Mattermost needs it"; exit 1; }
	eval "$env"
	local url=${CONVOSPHERE_TEST_POSTGRES_URL%%\?*}
	echo "${url%/*}"
}

print_env() {
	echo "export CONVOSPHERE_TEST_MATTERMOST_URL=http://127.0.0.1:$1"
}

start() {
	if running; then
		local port
		port=$(cat "$portfile")
		wait_ready "$port" "$(cat "$pidfile")"
		print_env "$port"
		return
	fi
	build
	local db
	db="$(postgres_server)/mattermost_test?sslmode=disable&connect_timeout=10"
	choose_port
	mkdir -p "$dir"
	log "starting on 127.0.0.1:$port, data in $dir, log in $logfile"
	# Configuration comes from the environment; config.json (created on first start)
	# only holds the defaults. setsid: the server outlives this script and the
	# terminal's Ctrl-C; no inherited stdout, so `$(scripts/mattermost.sh start)` returns.
	(
		cd "$dir"
		exec env \
			MM_CONFIG="$dir/config.json" \
			MM_SQLSETTINGS_DRIVERNAME=postgres \
			MM_SQLSETTINGS_DATASOURCE="$db" \
			MM_SQLSETTINGS_MAXOPENCONNS=20 \
			MM_SQLSETTINGS_MAXIDLECONNS=5 \
			MM_SERVICESETTINGS_LISTENADDRESS="127.0.0.1:$port" \
			MM_SERVICESETTINGS_SITEURL="http://127.0.0.1:$port" \
			MM_SERVICESETTINGS_ENABLEBOTACCOUNTCREATION=true \
			MM_SERVICESETTINGS_ENABLEUSERACCESSTOKENS=true \
			MM_SERVICESETTINGS_ENABLEAPIUSERDELETION=true \
			MM_SERVICESETTINGS_ENABLEAPICHANNELDELETION=true \
			MM_SERVICESETTINGS_ENABLEAPITEAMDELETION=true \
			MM_SERVICESETTINGS_ALLOWEDUNTRUSTEDINTERNALCONNECTIONS="127.0.0.0/8 localhost" \
			MM_SERVICESETTINGS_ENABLESECURITYFIXALERT=false \
			MM_SERVICESETTINGS_ENABLELOCALMODE=false \
			MM_SERVICESETTINGS_WEBSERVERMODE=disabled \
			MM_TEAMSETTINGS_ENABLEOPENSERVER=true \
			MM_TEAMSETTINGS_MAXUSERSPERTEAM=100000 \
			MM_EMAILSETTINGS_SENDEMAILNOTIFICATIONS=false \
			MM_EMAILSETTINGS_REQUIREEMAILVERIFICATION=false \
			MM_FILESETTINGS_DIRECTORY="$dir/data/" \
			MM_PLUGINSETTINGS_ENABLE=false \
			MM_PLUGINSETTINGS_ENABLEUPLOADS=false \
			MM_PLUGINSETTINGS_ENABLEMARKETPLACE=false \
			MM_PLUGINSETTINGS_ENABLEREMOTEMARKETPLACE=false \
			MM_PLUGINSETTINGS_AUTOMATICPREPACKAGEDPLUGINS=false \
			MM_PLUGINSETTINGS_DIRECTORY="$dir/plugins" \
			MM_PLUGINSETTINGS_CLIENTDIRECTORY="$dir/client-plugins" \
			MM_LOGSETTINGS_ENABLEDIAGNOSTICS=false \
			MM_LOGSETTINGS_ENABLECONSOLE=true \
			MM_LOGSETTINGS_CONSOLELEVEL=INFO \
			MM_LOGSETTINGS_CONSOLEJSON=false \
			MM_LOGSETTINGS_ENABLEFILE=false \
			MM_NOTIFICATIONLOGSETTINGS_ENABLEFILE=false \
			MM_NOTIFICATIONLOGSETTINGS_ENABLECONSOLE=false \
			MM_ANNOUNCEMENTSETTINGS_ADMINNOTICESENABLED=false \
			MM_ANNOUNCEMENTSETTINGS_USERNOTICESENABLED=false \
			setsid "$bin" server
	) </dev/null >>"$logfile" 2>&1 &
	echo $! >"$pidfile"
	wait_ready "$port" "$!"
	print_env "$port"
}

# wait_ready PORT PID: wait up to 120 s for the server to answer (the first start
# creates the database schema).
wait_ready() {
	for _ in $(seq 1 600); do
		if ready "$1"; then
			return
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			log "mattermost exited while starting; the end of $logfile:"
			tail -n 20 "$logfile" >&2
			rm -f "$pidfile"
			exit 1
		fi
		sleep 0.2
	done
	log "not ready after 120 s; the end of $logfile:"
	tail -n 20 "$logfile" >&2
	exit 1
}

stop() {
	running || { rm -f "$pidfile"; return 0; }
	local pid
	pid=$(cat "$pidfile")
	kill -TERM "$pid"
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "mattermost (pid $pid) did not stop within 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# reset: stop the server, drop its database (services.sh creates it again, empty, on
# the next start) and delete its files and config.
reset() {
	stop
	local server pg_bin
	server=$(postgres_server)
	pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
	"$pg_bin/psql" -q "$server/postgres" -c 'DROP DATABASE IF EXISTS mattermost_test WITH (FORCE)'
	rm -rf "$dir" "$logfile"
	log "reset: the next start is a fresh server"
}

case "${1:-start}" in
build) build ;;
start) start ;;
stop) stop ;;
reset) reset ;;
*) echo "usage: $0 build|start|stop|reset" >&2; exit 2 ;;
esac
