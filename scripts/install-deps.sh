#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine:
# PostgreSQL, Redis, Chromium (browser tests), poppler-utils (PDF text) and qpdf
# (encrypted PDF fixtures), and the man pages the retrieval benchmark reads.
# Idempotent and quick when everything is already there.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
command -v qpdf >/dev/null 2>&1 || need+=(qpdf)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
command -v col >/dev/null 2>&1 || need+=(bsdextrautils)
dpkg -s manpages >/dev/null 2>&1 || need+=(manpages)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm) # the MCP servers of the tool tests (scripts/mcp-servers.sh)
# Debian images may exclude documentation from packages (dpkg path-exclude);
# the benchmark needs coreutils' man pages, so reinstall it when they are missing.
reinstall=()
if ! dpkg -L coreutils 2>/dev/null | grep -q '/man1/cp.1'; then reinstall+=(coreutils); fi

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

if [ ${#reinstall[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
	if grep -rqs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
		# Minimised images drop man pages; the last matching pattern wins in dpkg.
		echo "path-include=/usr/share/man/*" >/etc/dpkg/dpkg.cfg.d/zz-convosphere-man
		reinstall+=(manpages)
	fi
	echo "install-deps: reinstalling ${reinstall[*]} for their man pages" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --reinstall "${reinstall[@]}" >/dev/null
fi
