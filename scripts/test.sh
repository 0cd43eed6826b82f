#!/usr/bin/env bash
# make test: install test dependencies, start real servers on loopback, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
trap 'scripts/services.sh stop' EXIT # also when a server fails to build or start
services_env=$(scripts/services.sh start)
eval "$services_env"
export CONVOSPHERE_REQUIRE_SERVERS=1

echo "test: go vet" >&2
go vet ./...
echo "test: go test (PostgreSQL at ${CONVOSPHERE_TEST_POSTGRES_URL%%\?*}, Redis at $CONVOSPHERE_TEST_REDIS_URL, Weaviate at $CONVOSPHERE_TEST_WEAVIATE_URL, Mattermost at $CONVOSPHERE_TEST_MATTERMOST_URL)" >&2
go test -race -count=1 -timeout 20m "$@" ./...
echo "test: fuzz (each target for ${FUZZTIME:-5s}: scripts/fuzz.sh)" >&2
scripts/fuzz.sh
