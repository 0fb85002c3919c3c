# syntax=docker/dockerfile:1
#
# trailkeep's container images: one static, non-root image per binary on an empty
# base, from one build stage.
#
#   docker build --target ingest   -t trailkeep/ingest:dev .
#   docker build --target chainer  -t trailkeep/chainer:dev .
#   docker build --target query    -t trailkeep/query:dev .
#   docker build --target exporter -t trailkeep/exporter:dev .
#   docker build --target trailctl -t trailkeep/trailctl:dev .
#
# Pass VERSION, COMMIT and DATE as build args to stamp --version and the labels.
# `make image-layout` builds the same images without an engine
# (internal/ociimage); its tests hold this file and that builder to the same
# user, paths, entrypoints and labels.
#
# Why one image per binary: a pod carries only the code it runs (the ingest pod has
# no trailctl able to read every tenant's rows), and each digest pins one component.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
# Static (no cgo), with the time zone database inside the binary: the final images
# have no libc and no /usr/share/zoneinfo.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    for b in ingest chainer query exporter trailctl; do \
      CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -tags timetzdata \
        -ldflags "-s -w -X github.com/trailkeep/trailkeep/internal/version.Version=$VERSION -X github.com/trailkeep/trailkeep/internal/version.Commit=$COMMIT -X github.com/trailkeep/trailkeep/internal/version.Date=$DATE" \
        -o /out/$b ./cmd/$b || exit 1; \
    done
# COPY copies a directory's contents, not the directory: these parents carry /tmp
# (1777) and the state directory (0700) as children, modes intact.
RUN mkdir -p /rootfs/tmp /rootfs-state/trailkeep && chmod 1777 /rootfs/tmp && chmod 0700 /rootfs-state/trailkeep

# base: what every image holds besides its binary (internal/ociimage builds the same).
FROM scratch AS base
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/ /
# The service user's state directory: an empty volume mounted here takes its owner.
COPY --from=build --chown=65532:65532 /rootfs-state/ /var/lib/
ENV PATH=/usr/local/bin
WORKDIR /tmp
USER 65532:65532
LABEL org.opencontainers.image.vendor="trailkeep" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${DATE}" \
      org.opencontainers.image.source="https://github.com/trailkeep/trailkeep"

FROM base AS ingest
COPY --from=build /out/ingest /usr/local/bin/ingest
LABEL org.opencontainers.image.title="trailkeep-ingest" \
      org.opencontainers.image.description="trailkeep ingest: tamper-evident audit pipeline for AI coding tools"
EXPOSE 8080 4317
ENTRYPOINT ["/usr/local/bin/ingest"]

FROM base AS chainer
COPY --from=build /out/chainer /usr/local/bin/chainer
LABEL org.opencontainers.image.title="trailkeep-chainer" \
      org.opencontainers.image.description="trailkeep chainer: tamper-evident audit pipeline for AI coding tools"
ENTRYPOINT ["/usr/local/bin/chainer"]

FROM base AS query
COPY --from=build /out/query /usr/local/bin/query
LABEL org.opencontainers.image.title="trailkeep-query" \
      org.opencontainers.image.description="trailkeep query: tamper-evident audit pipeline for AI coding tools"
ENTRYPOINT ["/usr/local/bin/query"]

FROM base AS exporter
COPY --from=build /out/exporter /usr/local/bin/exporter
LABEL org.opencontainers.image.title="trailkeep-exporter" \
      org.opencontainers.image.description="trailkeep exporter: tamper-evident audit pipeline for AI coding tools"
ENTRYPOINT ["/usr/local/bin/exporter"]

FROM base AS trailctl
COPY --from=build /out/trailctl /usr/local/bin/trailctl
LABEL org.opencontainers.image.title="trailkeep-trailctl" \
      org.opencontainers.image.description="trailkeep trailctl: tamper-evident audit pipeline for AI coding tools"
ENTRYPOINT ["/usr/local/bin/trailctl"]
