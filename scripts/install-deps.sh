#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: PostgreSQL, and
# Chromium for the browser tests.
# Idempotent and quick when everything is already there.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
	echo "install-deps: installing ${need[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: run as root (or install ${need[*]} yourself: apt-get install ${need[*]})" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
