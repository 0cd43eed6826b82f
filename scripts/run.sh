#!/usr/bin/env bash
# make run: start the console and the bot on the embedded default (SQLite and
# the embedded knowledge index in the data directory; no servers, no API
# keys), with a demo assistant whose knowledge base is this project's docs/.
# CONVOSPHERE_* variables in the environment override these defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONVOSPHERE_DATA_DIR=${CONVOSPHERE_DATA_DIR:-./data}
export CONVOSPHERE_CONSOLE_ADDR=${CONVOSPHERE_CONSOLE_ADDR:-127.0.0.1:8080}
export CONVOSPHERE_BOT_ADDR=${CONVOSPHERE_BOT_ADDR:-127.0.0.1:8081}
export CONVOSPHERE_DEMO_DOCS_DIR=${CONVOSPHERE_DEMO_DOCS_DIR:-./docs}
mkdir -p "$CONVOSPHERE_DATA_DIR"

# The first start creates user "admin" with this password. Keep it in the data
# directory so that every later `make run` can print it again.
pwfile=$CONVOSPHERE_DATA_DIR/.admin-password
if [ -z "${CONVOSPHERE_ADMIN_PASSWORD:-}" ]; then
	if [ ! -s "$pwfile" ]; then
		(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
	fi
	CONVOSPHERE_ADMIN_PASSWORD=$(cat "$pwfile")
	export CONVOSPHERE_ADMIN_PASSWORD
fi

bin/console migrate

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "run: stopping console and bot…" >&2
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	echo "run: stopped." >&2
}
trap stop INT TERM EXIT

bin/console serve &
pids+=($!)
bin/bot &
pids+=($!)

# The console prints its address and the sign-in once it is ready.
wait -n "${pids[@]}" || true
echo "run: a process stopped; stopping the other." >&2
