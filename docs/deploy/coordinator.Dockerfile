# syntax=docker/dockerfile:1
# tessera-coordinator (and the `tessera` command, for `kubectl exec … tessera sites list`).
# Build from the repository root:
#   docker build -f docs/deploy/coordinator.Dockerfile -t tessera-coordinator:0.1.0 .
# See docs/deploy.md.

# The builder is the official Swift image for Debian 12; the runtime stage uses the same Debian,
# so the system libraries the binaries link (OpenBLAS, OpenSSL's libcrypto, libsodium, SQLite)
# are the same versions at build and at run time.
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libopenblas-dev libssl-dev libsodium-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The Swift runtime and Foundation are linked in (--static-swift-stdlib), so the runtime image
# needs no Swift toolchain. The build folder (with the dependencies' checkouts) is a cache
# mount, kept between builds: the binaries are copied out of it.
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --static-swift-stdlib --product tessera-coordinator \
    && swift build -c release --static-swift-stdlib --product tessera \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/tessera-coordinator" /out/tessera-coordinator \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/tessera" /out/tessera

FROM ${RUNTIME_IMAGE}
# Only the shared libraries the binaries link, and the CA bundle.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libopenblas0 libssl3 libsodium23 libsqlite3-0 libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged UID/GID: the manifests' runAsUser/fsGroup and file ownership on the
# state volume rely on it.
RUN groupadd --gid 10001 tessera \
    && useradd --uid 10001 --gid tessera --home-dir /var/lib/tessera --no-create-home \
        --shell /usr/sbin/nologin tessera \
    && install -d -o tessera -g tessera -m 0700 /var/lib/tessera \
    && install -d -m 0755 /etc/tessera/tls /etc/tessera/trust
COPY --from=builder /out/tessera-coordinator /out/tessera /usr/local/bin/
# The state folder (SQLite database in WAL mode and model blobs) and, beside it, each
# experiment's results (results/<name>/, relative to the working directory). Mount a volume here.
VOLUME ["/var/lib/tessera"]
WORKDIR /var/lib/tessera
USER 10001:10001
# 7443: sites (gRPC, mTLS). 7444: researcher API (gRPC, mTLS). 9464: HTTP (/metrics, /healthz,
# /readyz, the dashboard): keep it inside the cluster.
EXPOSE 7443 7444 9464
# --tls-dir: cert.pem and key.pem of the coordinator. --trust: ca.pem and revoked.signed, never
# the CA's key (a folder holding ca-key.pem is refused). Arguments given to `docker run` or a
# pod's `args` are appended (for example --experiment FILE, --revocation-check-interval 10).
ENTRYPOINT ["/usr/local/bin/tessera-coordinator", \
    "--listen", "0.0.0.0:7443", \
    "--api-listen", "0.0.0.0:7444", \
    "--tls-dir", "/etc/tessera/tls", \
    "--trust", "/etc/tessera/trust", \
    "--state", "/var/lib/tessera/state", \
    "--http", "0.0.0.0:9464", \
    "--log-format", "json"]
