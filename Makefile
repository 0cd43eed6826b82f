# ConvoSphere. The two commands: `make run` and `make test`.
GO ?= go
BIN := bin

.PHONY: run build test lint vet fmt bench bench-retrieval bench-console bench-slack bench-load screenshots clean services-stop

## run: build and start console and bot on the embedded default (no servers, no API keys)
run: build
	@scripts/run.sh

## build: build both binaries into bin/
build:
	@$(GO) build -o $(BIN)/ ./cmd/console ./cmd/bot

## test: install what tests need, start PostgreSQL on loopback, run every test
test:
	@scripts/test.sh

## lint: gofmt, go vet and the import-direction rules
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@$(GO) vet ./...
	@$(GO) test -count=1 -run 'TestImportRules' ./engine/

## bench: Go micro-benchmarks of the packages
bench:
	@$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-retrieval: the man-page retrieval evaluation and size test, written to docs/benchmarks.md
bench-retrieval:
	@scripts/install-deps.sh
	@$(GO) run ./bench/retrieval -size 10k,1m -out docs/benchmarks.md

## screenshots: every main console page in both themes, in headless Chromium, to docs/screenshots/
screenshots:
	@CONVOSPHERE_SCREENSHOTS=1 CONVOSPHERE_REQUIRE_SERVERS=1 $(GO) test -count=1 -run '^TestScreenshots$$' ./cmd/console/

## bench-console: console pages on 1M messages in PostgreSQL, written to docs/benchmarks.md
bench-console:
	@$(GO) run ./bench/console -out docs/benchmarks.md

## bench-slack: signed app_mention events against the bot and a Slack Bolt app, written to docs/benchmarks.md
bench-slack:
	@$(GO) run ./bench/slack -out docs/benchmarks.md

## bench-load: 200 concurrent conversations on Slack, Discord and Mattermost fakes with a streaming model, and a burst of 1000 retried Slack events, written to docs/benchmarks.md
bench-load:
	@$(GO) run ./bench/load -out docs/benchmarks.md

## services-stop: stop the test servers started by make test
services-stop:
	@scripts/services.sh stop

clean:
	rm -rf $(BIN)
