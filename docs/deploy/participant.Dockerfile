# syntax=docker/dockerfile:1
# tessera-participant: one site of a federation.
# Build from the repository root:
#   docker build -f docs/deploy/participant.Dockerfile -t tessera-participant:0.1.0 .
# See docs/deploy.md.

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libopenblas-dev libssl-dev libsodium-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --static-swift-stdlib --product tessera-participant \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/tessera-participant" /out/tessera-participant

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libopenblas0 libssl3 libsodium23 libsqlite3-0 libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 tessera \
    && useradd --uid 10001 --gid tessera --home-dir /var/lib/tessera --no-create-home \
        --shell /usr/sbin/nologin tessera \
    && install -d -o tessera -g tessera -m 0700 /var/lib/tessera \
    && install -d -m 0755 /etc/tessera
COPY --from=builder /out/tessera-participant /usr/local/bin/
# The site's own writable folder: its identity (where the revocation list the coordinator
# relays is saved, beside cert.pem) and its privacy ledger. Mount a volume here.
VOLUME ["/var/lib/tessera"]
WORKDIR /var/lib/tessera
USER 10001:10001
# 9465: HTTP (/metrics, /healthz, /readyz). The gRPC connection is outbound only: no port for it.
EXPOSE 9465
# The site file names the coordinator, the identity folder, the datasets and the policy.
ENTRYPOINT ["/usr/local/bin/tessera-participant", \
    "--config", "/etc/tessera/site.yaml", \
    "--http", "0.0.0.0:9465", \
    "--log-format", "json"]
