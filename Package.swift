// swift-tools-version: 6.0
// The flow of data, one module per stage:
// file bytes -> archive entries -> unpickled values -> tensor records (TorchCheckpoint)
//   -> state dict -> name mapping -> bound ResNet -> logits -> verification report.
import PackageDescription

let package = Package(
    name: "Torchport",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Torchport", targets: ["Torchport"]),
        .executable(name: "torchport", targets: ["torchport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Public API
        .target(name: "TorchCheckpoint", dependencies: ["CZip"]),
        .target(name: "Torchport", dependencies: ["TorchCheckpoint"]),
        .executableTarget(
            name: "torchport",
            dependencies: [
                "Torchport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Implementation details (system-library shims)
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

        // MARK: - Benchmarks (not a product: never reaches users)
        .executableTarget(name: "torchport-bench", dependencies: ["TorchCheckpoint"],
                          path: "Benchmarks/Sources/torchport-bench"),

        // MARK: - Tests
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint"],
                    resources: []),
        .testTarget(name: "TorchportCLITests", dependencies: ["torchport"]),
    ]
)
