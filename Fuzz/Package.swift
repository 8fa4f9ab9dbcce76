// swift-tools-version:6.1
import PackageDescription

// The libFuzzer driver for Tessera's fuzz targets (`TesseraFuzzTargets` in the root package).
// A package of its own because it links libFuzzer and is built with sanitizers: `make fuzz`
// (Scripts/fuzz.sh) builds it; the root package's `swift build` never sees it.
let package = Package(
    name: "TesseraFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Tessera", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "tessera-fuzz",
            dependencies: [.product(name: "TesseraFuzzTargets", package: "Tessera")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
