#!/usr/bin/env bash
# Installs the MCP servers the tool tests run (from npm, pinned versions) into
# ~/.cache/convosphere and prints `export VAR=...` lines naming their entry points:
#   CONVOSPHERE_TEST_MCP_EVERYTHING   @modelcontextprotocol/server-everything (stdio)
#   CONVOSPHERE_TEST_MCP_FILESYSTEM   @modelcontextprotocol/server-filesystem (stdio)
# Run them with node. Needs node and npm (the registry must be reachable the first time).
set -euo pipefail

version=2026.8.31
dir=${CONVOSPHERE_MCP_DIR:-$HOME/.cache/convosphere/mcp-servers-$version}
log() { echo "mcp-servers: $*" >&2; }

command -v node >/dev/null 2>&1 || { log "node is not installed (apt-get install nodejs npm)"; exit 1; }
everything=$dir/node_modules/@modelcontextprotocol/server-everything/dist/index.js
filesystem=$dir/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js
if [ ! -f "$everything" ] || [ ! -f "$filesystem" ]; then
	command -v npm >/dev/null 2>&1 || { log "npm is not installed (apt-get install npm)"; exit 1; }
	log "installing @modelcontextprotocol/server-everything and server-filesystem $version into $dir"
	mkdir -p "$dir"
	npm install --prefix "$dir" --no-audit --no-fund --silent \
		"@modelcontextprotocol/server-everything@$version" "@modelcontextprotocol/server-filesystem@$version" >&2
fi
for f in "$everything" "$filesystem"; do
	[ -f "$f" ] || { log "$f is missing after npm install"; exit 1; }
done
echo "export CONVOSPHERE_TEST_MCP_EVERYTHING=$everything"
echo "export CONVOSPHERE_TEST_MCP_FILESYSTEM=$filesystem"
