#!/usr/bin/env bash
# Builds, starts and stops the Weaviate server the tests and benchmarks use:
# single node, on loopback (except its gRPC and cluster data ports: Weaviate 1.35 has no
# setting for their address), data under .cache/services/weaviate of this checkout.
#   scripts/weaviate.sh build   install weaviate-server (about 5 minutes) unless it is there
#   scripts/weaviate.sh start   build if needed, start, wait until ready, print `export VAR=...`
#   scripts/weaviate.sh stop    stop the server this checkout started
# Environment:
#   CONVOSPHERE_WEAVIATE_BIN    the weaviate-server binary
#                               (default ~/.cache/convosphere/weaviate-v1.35.2/weaviate-server)
#   CONVOSPHERE_SERVICES_DIR    state directory (default .cache/services of the checkout)
#   CONVOSPHERE_WEAVIATE_PORT   HTTP port; gRPC, gossip, data and Raft take the next five
# Every command is idempotent: start on a running server prints its address again,
# stop on a stopped one does nothing.
set -euo pipefail

version=v1.35.2
root=$(cd "$(dirname "$0")/.." && pwd)
state=${CONVOSPHERE_SERVICES_DIR:-$root/.cache/services}
bin=${CONVOSPHERE_WEAVIATE_BIN:-$HOME/.cache/convosphere/weaviate-$version/weaviate-server}
dir=$state/weaviate
pidfile=$state/weaviate.pid
portfile=$state/weaviate.ports
logfile=$state/weaviate.log

log() { echo "weaviate: $*" >&2; }

# listening PORT: is something accepting connections on 127.0.0.1:PORT?
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ready PORT: does Weaviate on PORT say it is ready?
ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$1/v1/.well-known/ready" 2>/dev/null; }

# running: is the server recorded in the pid file alive (and ours)?
running() {
	local pid
	[ -s "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	kill -0 "$pid" 2>/dev/null || return 1
	# A pid reused by another program after a crash is not ours.
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 | grep -qF "$(basename "$bin")" || return 1
}

build() {
	if [ -x "$bin" ]; then
		return
	fi
	command -v go >/dev/null || { log "go is not installed: it is needed to build weaviate-server"; exit 1; }
	local dest tmp
	dest=$(dirname "$bin")
	mkdir -p "$dest"
	tmp=$(mktemp -d "$dest/.build.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	log "building weaviate-server $version into $dest (about 5 minutes on 2 cores)"
	GOFLAGS= GOBIN=$tmp go install "github.com/weaviate/weaviate/cmd/weaviate-server@$version"
	mv "$tmp/weaviate-server" "$bin"
	rm -rf "$tmp"
	trap - EXIT
	log "built $bin"
}

# ports_free P...: are none of the ports taken?
ports_free() {
	local p
	for p in "$@"; do
		if listening "$p"; then
			return 1
		fi
	done
}

# choose_ports sets http grpc gossip data raft raft_rpc: six consecutive
# ports, the same ones as last time when they are still free, else the first
# free block from 28080 up (another checkout's server may hold 28080). The
# ports stay below Linux's ephemeral range (32768-60999), where outgoing
# connections could hold a port we want to listen on.
choose_ports() {
	local base=""
	if [ -n "${CONVOSPHERE_WEAVIATE_PORT:-}" ]; then
		base=$CONVOSPHERE_WEAVIATE_PORT
		ports_free $(seq "$base" $((base + 5))) ||
			{ log "ports $base-$((base + 5)) are not all free: set CONVOSPHERE_WEAVIATE_PORT to another port"; exit 1; }
	elif [ -s "$portfile" ] && ports_free $(seq "$(cat "$portfile")" $(($(cat "$portfile") + 5))); then
		base=$(cat "$portfile")
	else
		for b in $(seq 28080 10 28990); do
			if ports_free $(seq "$b" $((b + 5))); then
				base=$b
				break
			fi
		done
		[ -n "$base" ] || { log "no six free ports in 28080-28995 for Weaviate: set CONVOSPHERE_WEAVIATE_PORT"; exit 1; }
	fi
	mkdir -p "$state"
	echo "$base" >"$portfile"
	http=$base grpc=$((base + 1)) gossip=$((base + 2)) data=$((base + 3)) raft=$((base + 4)) raft_rpc=$((base + 5))
}

print_env() {
	echo "export CONVOSPHERE_TEST_WEAVIATE_URL=http://127.0.0.1:$1"
}

start() {
	if running; then
		local base
		base=$(cat "$portfile")
		wait_ready "$base" "$(cat "$pidfile")"
		print_env "$base"
		return
	fi
	build
	choose_ports
	mkdir -p "$dir"
	log "starting on 127.0.0.1:$http (gRPC $grpc), data in $dir, log in $logfile"
	# setsid: the server outlives this script and the terminal's Ctrl-C;
	# no inherited stdout, so `$(scripts/weaviate.sh start)` returns.
	env \
		AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true \
		PERSISTENCE_DATA_PATH="$dir" \
		DEFAULT_VECTORIZER_MODULE=none \
		CLUSTER_HOSTNAME=node1 \
		CLUSTER_ADVERTISE_ADDR=127.0.0.1 \
		CLUSTER_BIND_ADDR=127.0.0.1 \
		CLUSTER_GOSSIP_BIND_PORT="$gossip" \
		CLUSTER_DATA_BIND_PORT="$data" \
		RAFT_PORT="$raft" \
		RAFT_INTERNAL_RPC_PORT="$raft_rpc" \
		RAFT_BOOTSTRAP_EXPECT=1 \
		GRPC_PORT="$grpc" \
		GO_PROFILING_DISABLE=true \
		PROMETHEUS_MONITORING_ENABLED=false \
		DISABLE_TELEMETRY=true \
		LOG_LEVEL=warning \
		setsid "$bin" --scheme http --host 127.0.0.1 --port "$http" \
		</dev/null >>"$logfile" 2>&1 &
	echo $! >"$pidfile"
	wait_ready "$http" "$!"
	print_env "$http"
}

# wait_ready PORT PID: wait up to 120 s for the server to answer ready.
wait_ready() {
	local i
	for i in $(seq 1 600); do
		if ready "$1"; then
			return
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			log "weaviate-server exited while starting; the end of $logfile:"
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
	local pid i
	pid=$(cat "$pidfile")
	kill -TERM "$pid"
	for i in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "weaviate-server (pid $pid) did not stop within 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

case "${1:-start}" in
build) build ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
