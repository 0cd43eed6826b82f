# Multi-stage build: static binaries on a distroless, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ ./cmd/console ./cmd/bot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /convosphere/
COPY docs /convosphere/docs
USER nonroot
ENTRYPOINT []
