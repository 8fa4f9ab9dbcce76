#!/usr/bin/env bash
# Regenerates the Swift code of the Tessera wire protocol from its .proto files.
#
#   Scripts/generate-protos.sh            # regenerate Sources/TesseraWire/Generated
#   Scripts/generate-protos.sh --check    # regenerate into a temporary folder and fail if
#                                         # the committed files differ (for CI)
#
# The generated files are committed, so building Tessera never needs protoc or the plugins;
# run this only after editing Sources/TesseraWire/Protos/**.proto.
#
# What it uses:
#   protoc                    Debian's protobuf-compiler (installed here if missing)
#   protoc-gen-swift          apple/swift-protobuf, the version below
#   protoc-gen-grpc-swift-2   grpc/grpc-swift-protobuf, the version below
# The two plugins are built once from the Swift package mirror into $TESSERA_PROTOC_CACHE
# (default: .build-protoc in the repository, which git ignores) and reused afterwards; a first
# build takes a few minutes on 2 cores. The plugin versions must match the swift-protobuf and
# grpc-swift-protobuf versions Package.swift depends on: generated code checks the runtime's
# API version when it is compiled.
set -euo pipefail

SWIFT_PROTOBUF_VERSION=1.39.0
GRPC_SWIFT_PROTOBUF_VERSION=2.4.1

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
protos="$root/Sources/TesseraWire/Protos"
generated="$root/Sources/TesseraWire/Generated"
cache="${TESSERA_PROTOC_CACHE:-$root/.build-protoc}"
check=false
if [[ "${1:-}" == "--check" ]]; then check=true; fi

say() { printf 'generate-protos: %s\n' "$*" >&2; }

# 1. protoc
if ! command -v protoc >/dev/null 2>&1; then
    say "installing protobuf-compiler (protoc)"
    sudo_cmd=""
    if [[ "$(id -u)" != 0 ]]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq protobuf-compiler >/dev/null
fi
say "using $(protoc --version)"

# 2. The plugins, built once per version pair. grpc-swift-protobuf depends on swift-protobuf,
# so one checkout and one build folder give both plugins.
plugin_src="$cache/grpc-swift-protobuf-$GRPC_SWIFT_PROTOBUF_VERSION"
plugin_build="$cache/build"
plugin_bin="$plugin_build/release"
stamp="$cache/plugins-$SWIFT_PROTOBUF_VERSION-$GRPC_SWIFT_PROTOBUF_VERSION.stamp"
if [[ ! -f "$stamp" || ! -x "$plugin_bin/protoc-gen-swift" || ! -x "$plugin_bin/protoc-gen-grpc-swift-2" ]]; then
    mkdir -p "$cache"
    if [[ ! -d "$plugin_src" ]]; then
        say "fetching grpc-swift-protobuf $GRPC_SWIFT_PROTOBUF_VERSION"
        git -c advice.detachedHead=false clone -q --branch "$GRPC_SWIFT_PROTOBUF_VERSION" \
            https://github.com/grpc/grpc-swift-protobuf "$plugin_src"
    fi
    start=$(date +%s)
    say "building protoc-gen-grpc-swift-2 and protoc-gen-swift (release; a few minutes the first time)"
    swift build -c release --package-path "$plugin_src" --scratch-path "$plugin_build" \
        --product protoc-gen-grpc-swift-2
    swift build -c release --package-path "$plugin_src" --scratch-path "$plugin_build" \
        --product protoc-gen-swift
    resolved="$(grep -A6 '"identity" : "swift-protobuf"' "$plugin_src/Package.resolved" \
        | sed -n 's/.*"version" : "\(.*\)".*/\1/p' || true)"
    if [[ "$resolved" != "$SWIFT_PROTOBUF_VERSION" ]]; then
        say "error: the plugins resolved swift-protobuf $resolved, expected $SWIFT_PROTOBUF_VERSION"
        exit 1
    fi
    touch "$stamp"
    say "plugins built in $(( $(date +%s) - start ))s"
fi

# 3. Generate into a fresh folder, then replace the committed files, so a removed .proto
# also removes its generated Swift.
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
(
    cd "$protos"
    # Sorted for a stable order; paths relative to $protos, so imports read "tessera/v1/x.proto".
    mapfile -t files < <(find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
    protoc \
        --proto_path=. \
        --plugin=protoc-gen-swift="$plugin_bin/protoc-gen-swift" \
        --plugin=protoc-gen-grpc-swift-2="$plugin_bin/protoc-gen-grpc-swift-2" \
        --swift_out="$out" \
        --swift_opt=Visibility=Public \
        --swift_opt=FileNaming=PathToUnderscores \
        --swift_opt=UseAccessLevelOnImports=true \
        --grpc-swift-2_out="$out" \
        --grpc-swift-2_opt=Visibility=Public \
        --grpc-swift-2_opt=Client=true \
        --grpc-swift-2_opt=Server=true \
        --grpc-swift-2_opt=FileNaming=PathToUnderscores \
        --grpc-swift-2_opt=UseAccessLevelOnImports=true \
        "${files[@]}"
)
# The gRPC plugin writes a near-empty file for every .proto without a service; drop those.
grep -l 'This file contained no services' "$out"/*.grpc.swift | xargs -r rm -f

if $check; then
    if diff -r "$out" "$generated" >/dev/null; then
        say "generated code is up to date"
        exit 0
    fi
    say "error: Sources/TesseraWire/Generated differs from the .proto files; run Scripts/generate-protos.sh"
    diff -r "$out" "$generated" | head -40 >&2 || true
    exit 1
fi

mkdir -p "$generated"
find "$generated" -name '*.swift' -delete
cp "$out"/*.swift "$generated"/
say "wrote $(find "$generated" -name '*.swift' | wc -l) files to ${generated#"$root"/}"
