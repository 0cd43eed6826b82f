# Multi-stage build: static Go binaries on a slim Debian image that carries
# poppler-utils (pdftotext reads PDF uploads), running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/console ./cmd/bot

FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends poppler-utils ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --uid 10001 --home /data convosphere \
	&& mkdir -p /data && chown convosphere /data
COPY --from=build /out/ /convosphere/
COPY docs /convosphere/docs
USER convosphere
WORKDIR /data
ENTRYPOINT []
