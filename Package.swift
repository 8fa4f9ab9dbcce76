// swift-tools-version:6.1
import PackageDescription

/// Settings shared by every Swift target: Swift 6 language mode plus the upcoming
/// features the style guide asks for.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // A module's imports stay its own unless marked `public import`: its users do not see its
    // dependencies by accident.
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// Numeric kernels are slow unoptimised, even in debug test runs, so the hot modules
/// are always compiled with `-O`.
let kernelSettings: [SwiftSetting] =
    swiftSettings + [
        .unsafeFlags(["-O"])
    ]

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraSupport", targets: ["TesseraSupport"]),
        .library(name: "TesseraTensor", targets: ["TesseraTensor"]),
        .library(name: "TesseraCrypto", targets: ["TesseraCrypto"]),
        .library(name: "TesseraSecAgg", targets: ["TesseraSecAgg"]),
        .library(name: "TesseraPrivacy", targets: ["TesseraPrivacy"]),
        .library(name: "TesseraData", targets: ["TesseraData"]),
        .library(name: "TesseraFederation", targets: ["TesseraFederation"]),
        .library(name: "TesseraSimulation", targets: ["TesseraSimulation"]),
        .library(name: "TesseraWire", targets: ["TesseraWire"]),
        .library(name: "TesseraPKI", targets: ["TesseraPKI"]),
        .library(name: "TesseraTransport", targets: ["TesseraTransport"]),
        .library(name: "TesseraState", targets: ["TesseraState"]),
        .library(name: "TesseraCoordinator", targets: ["TesseraCoordinator"]),
        .library(name: "TesseraParticipant", targets: ["TesseraParticipant"]),
        .library(name: "TesseraTesting", targets: ["TesseraTesting"]),
        .library(name: "TesseraFuzzTargets", targets: ["TesseraFuzzTargets"]),
        .executable(name: "tessera-coordinator", targets: ["tessera-coordinator"]),
        .executable(name: "tessera-participant", targets: ["tessera-participant"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Tracing: the API and the test tracer; OTLP export over gRPC only (no async-http-client).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPGRPC"]),
        // The HTTP port for /metrics, probes and the coordinator's dashboard. No traits: the
        // swift-configuration support is not used.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
    ],
    targets: [
        // MARK: C libraries (system packages; the only places C is declared)
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // MARK: Shared utilities (no dependencies: durable file writes, hex, the seeded PRNG, parallel loops)
        .target(
            name: "TesseraSupport",
            swiftSettings: kernelSettings
        ),

        // MARK: Numeric and crypto foundations
        .target(
            name: "TesseraTensor",
            dependencies: ["CBLAS", "TesseraSupport"],
            swiftSettings: kernelSettings
        ),
        .target(
            name: "TesseraCrypto",
            dependencies: ["CSodium", "COpenSSL", "TesseraSupport"],
            swiftSettings: kernelSettings
        ),
        .target(
            name: "TesseraSecAgg",
            dependencies: ["TesseraCrypto", "TesseraSupport"],
            swiftSettings: kernelSettings
        ),

        // Differential privacy: clipping, noise mechanisms and the RDP accountant (pure, like SecAgg)
        .target(
            name: "TesseraPrivacy",
            dependencies: ["TesseraSupport"],
            swiftSettings: kernelSettings
        ),

        .target(
            name: "TesseraData",
            dependencies: ["TesseraTensor"],
            swiftSettings: kernelSettings
        ),
        .target(
            name: "TesseraFederation",
            dependencies: [
                "TesseraTensor", "TesseraData", "TesseraSecAgg", "TesseraPrivacy", "TesseraCrypto", "TesseraSupport",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Wire (protobuf messages, generated gRPC stubs, conversions to domain types)
        .target(
            name: "TesseraWire",
            dependencies: [
                "TesseraFederation", "TesseraSecAgg", "TesseraPrivacy", "TesseraCrypto", "TesseraSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["Protos"],
            swiftSettings: swiftSettings
        ),

        // MARK: Site PKI (federation CA, site and coordinator certificates)
        .target(
            name: "TesseraPKI",
            dependencies: [
                "TesseraSupport", "TesseraFederation", "TesseraCrypto",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Services. The coordinator and the participant share only the transport settings:
        // `tessera-participant` links no coordinator code.
        .target(
            name: "TesseraTransport",
            dependencies: [
                "TesseraWire",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // The coordinator's durable state: SQLite through GRDB (WAL) and the content-addressed
        // model blobs. No gRPC here, so the CLI can read a state folder without a server.
        .target(
            name: "TesseraState",
            dependencies: [
                "TesseraFederation", "TesseraSupport", "TesseraTensor", "TesseraCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TesseraCoordinator",
            dependencies: [
                "TesseraState", "TesseraTransport", "TesseraFederation", "TesseraWire", "TesseraPKI", "TesseraSecAgg",
                "TesseraTensor",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TesseraParticipant",
            dependencies: [
                "TesseraTransport", "TesseraFederation", "TesseraWire", "TesseraPKI", "TesseraData", "TesseraSecAgg",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Test support shipped as code: the in-process and loopback federations, the
        // manual clock, the in-memory model store and the hooks that play a faulty site.
        .target(
            name: "TesseraTesting",
            dependencies: [
                "TesseraCoordinator", "TesseraParticipant", "TesseraTransport", "TesseraFederation",
                "TesseraSimulation",
                "TesseraWire", "TesseraPKI", "TesseraTensor",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Test support (shipped as code, used by tests and by `tessera simulate`)
        .target(
            name: "TesseraSimulation",
            dependencies: ["TesseraFederation", "TesseraData", "TesseraTensor", "TesseraPKI", "TesseraCrypto"],
            swiftSettings: swiftSettings
        ),

        // MARK: Fuzz targets: what `Fuzz/` runs under libFuzzer and `make test` replays from the
        // committed corpora (see README, "Fuzzing").
        .target(
            name: "TesseraFuzzTargets",
            dependencies: [
                "TesseraWire", "TesseraFederation", "TesseraSecAgg", "TesseraCrypto", "TesseraSupport", "TesseraPKI",
                "TesseraParticipant", "TesseraData", "TesseraTensor",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Benchmarks (reached through `tessera bench`)
        .target(
            name: "TesseraBenchmarks",
            dependencies: [
                "TesseraTensor", "TesseraCrypto", "TesseraSecAgg", "TesseraData", "TesseraFederation",
                "TesseraCoordinator", "TesseraState", "TesseraPrivacy",
                "TesseraParticipant", "TesseraTesting", "TesseraTransport", "TesseraPKI", "TesseraWire",
                .product(name: "Logging", package: "swift-log"),
                // The runtime benchmark's references: the TLS stack alone, and gRPC's transport alone.
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Benchmarks/TesseraBenchmarks",
            swiftSettings: swiftSettings
        ),

        // MARK: Executables (thin)
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraTensor",
                "TesseraData",
                "TesseraFederation",
                "TesseraPrivacy",
                "TesseraSimulation",
                "TesseraPKI",
                "TesseraState",
                "TesseraCoordinator",
                "TesseraTransport",
                "TesseraTesting",
                "TesseraBenchmarks",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "tessera-coordinator",
            dependencies: [
                "TesseraCoordinator", "TesseraTransport", "TesseraFederation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tessera-participant",
            dependencies: [
                "TesseraParticipant", "TesseraTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "TesseraSupportTests",
            dependencies: ["TesseraSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraTensorTests",
            dependencies: [
                "TesseraTensor", "TesseraSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraDataTests",
            dependencies: ["TesseraData", "TesseraTensor"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraFederationTests",
            dependencies: [
                "TesseraFederation", "TesseraSimulation", "TesseraData", "TesseraTensor", "TesseraSecAgg", "TesseraPKI",
                "TesseraCrypto", "TesseraPrivacy",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraWireTests",
            dependencies: [
                "TesseraWire", "TesseraFederation", "TesseraSecAgg", "TesseraCrypto", "TesseraSupport",
                "TesseraPrivacy",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraPKITests",
            dependencies: ["TesseraPKI", .product(name: "X509", package: "swift-certificates")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraCoordinatorTests",
            dependencies: [
                "TesseraCoordinator", "TesseraTesting", "TesseraTransport", "TesseraParticipant", "TesseraFederation",
                "TesseraSimulation", "TesseraWire", "TesseraPKI", "TesseraState",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraParticipantTests",
            dependencies: [
                "TesseraParticipant", "TesseraTesting", "TesseraTransport", "TesseraFederation", "TesseraWire",
                "TesseraPKI",
                "TesseraData", "TesseraTensor",
                // The malicious-coordinator tests: the model store the scripted coordinator serves
                // from, the honest peers' SecAgg clients, and certificates to present as the coordinator's.
                "TesseraCoordinator", "TesseraSecAgg", "TesseraCrypto", "TesseraSimulation",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraIntegrationTests",
            dependencies: [
                "TesseraTesting", "TesseraCoordinator", "TesseraParticipant", "TesseraTransport", "TesseraFederation",
                "TesseraSimulation", "TesseraPKI", "TesseraState", "TesseraTensor", "TesseraPrivacy",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraStateTests",
            dependencies: ["TesseraState", "TesseraFederation", "TesseraTensor", "TesseraSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraCryptoTests",
            dependencies: ["TesseraCrypto", "TesseraSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraFuzzTargetsTests",
            dependencies: [
                "TesseraFuzzTargets", "TesseraWire", "TesseraFederation", "TesseraSecAgg", "TesseraCrypto",
                "TesseraPKI",
                "TesseraTensor", "TesseraSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraPrivacyTests",
            dependencies: [
                "TesseraPrivacy", "TesseraSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraSecAggTests",
            dependencies: [
                "TesseraSecAgg",
                "TesseraCrypto",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
