// swift-tools-version: 6.0
// The flow of data, one module per stage:
// file bytes -> archive entries -> unpickled values -> tensor records (TorchCheckpoint)
//   -> state dict -> name mapping -> bound ResNet (ResNet) -> logits -> report (Verification);
// SafeTensors is the native format written by `convert` and read back zero-copy.
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
        .target(name: "TorchCheckpoint", dependencies: ["CZip", "CSHA256"]),
        .target(name: "SafeTensors", dependencies: ["TorchCheckpoint"]),
        .target(name: "ResNet", dependencies: ["TorchCheckpoint", "COpenBLAS", "CKernels"]),
        .target(name: "Verification", dependencies: ["TorchCheckpoint", "SafeTensors"]),
        .target(name: "Images", dependencies: ["CJPEG", "CPNG"]),
        .target(name: "Torchport", dependencies: ["TorchCheckpoint", "SafeTensors", "ResNet", "Verification", "Images"]),
        .executableTarget(
            name: "torchport",
            dependencies: [
                "Torchport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Implementation details (system-library shims)
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // SHA-256 block compression with the x86 SHA instructions (Swift cannot emit them).
        .target(name: "CSHA256"),
        // The packed engine's convolution kernels (AVX-512, chosen at run time; see docs/performance.md).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),

        // MARK: - Benchmarks (not a product: never reaches users)
        .executableTarget(name: "torchport-bench", dependencies: ["TorchCheckpoint", "SafeTensors"],
                          path: "Benchmarks/Sources/torchport-bench"),

        // MARK: - Fuzzing (built with -sanitize=fuzzer,address by `make fuzz`; a plain build replays files)
        .executableTarget(name: "torchport-fuzz", dependencies: ["TorchCheckpoint", "SafeTensors"],
                          path: "Fuzz/Sources/torchport-fuzz"),

        // MARK: - Tests
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
        .testTarget(name: "ResNetTests", dependencies: ["ResNet", "Torchport", "CKernels"]),
        .testTarget(name: "VerificationTests", dependencies: ["Verification"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images"]),
        .testTarget(name: "TorchportCLITests", dependencies: ["torchport", "Torchport"]),
    ]
)
