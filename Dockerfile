# syntax=docker/dockerfile:1
#
# ConvoSphere image: both binaries (console and bot) in one image; the command
# chooses which runs (see docker-compose.yml and deploy/kubernetes/).
#
#   docker build -t convosphere:local .
#   docker build --build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t convosphere:1.2.3 .
#
# Stage 1 compiles static binaries (CGO_ENABLED=0: pure Go, no libc needed,
# SQLite is modernc.org/sqlite) on the build machine's platform, cross-compiled
# for the target platform, so `docker buildx build --platform linux/amd64,linux/arm64`
# needs no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/ ./cmd/console ./cmd/bot

# Stage 2 is Debian slim rather than distroless or scratch because PDF uploads
# need poppler-utils' pdftotext. Since the image has a package manager anyway,
# the health checks (this HEALTHCHECK, docker-compose.yml) use curl: one small
# package, and the binaries have no probe subcommand of their own.
FROM debian:bookworm-slim
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ConvoSphere" \
	org.opencontainers.image.description="Chat-ops AI assistant for Slack, Discord and Mattermost: bot and admin console" \
	org.opencontainers.image.source="https://github.com/convosphere/convosphere" \
	org.opencontainers.image.documentation="https://github.com/convosphere/convosphere/blob/main/docs/operations.md" \
	org.opencontainers.image.version="${VERSION}" \
	org.opencontainers.image.revision="${REVISION}" \
	org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
RUN apt-get update \
	&& apt-get install -y --no-install-recommends poppler-utils ca-certificates curl \
	&& rm -rf /var/lib/apt/lists/* \
	&& groupadd --system --gid 10001 convosphere \
	&& useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin convosphere \
	&& mkdir -p /data \
	&& chown 10001:10001 /data
COPY --from=build /out/ /convosphere/
COPY docs /convosphere/docs
# Inside a container the processes listen on every interface (the built-in
# defaults are loopback only) and keep the embedded store in /data.
ENV PATH="/convosphere:${PATH}" \
	CONVOSPHERE_DATA_DIR=/data \
	CONVOSPHERE_CONSOLE_ADDR=0.0.0.0:8080 \
	CONVOSPHERE_BOT_ADDR=0.0.0.0:8081
EXPOSE 8080 8081
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /data
# The container runs the console or the bot, each on its own address: probe
# whichever listens (the ports follow CONVOSPHERE_*_ADDR). Compose and
# Kubernetes define their own, more precise checks (/readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
	CMD curl -fsS -o /dev/null "http://127.0.0.1:${CONVOSPHERE_CONSOLE_ADDR##*:}/healthz" \
	|| curl -fsS -o /dev/null "http://127.0.0.1:${CONVOSPHERE_BOT_ADDR##*:}/healthz" \
	|| exit 1
ENTRYPOINT []
CMD ["/convosphere/console", "serve"]
