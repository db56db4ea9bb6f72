// swift-tools-version: 6.0
// The flow of data, one module per stage:
// file bytes -> archive entries -> unpickled values -> tensor records (TorchCheckpoint)
//   -> state dict -> name mapping, architecture (StateDict) -> bound ResNet (ResNet) -> logits
//   -> report (Verification);
// SafeTensors is the native format written by `convert` (Conversion) and read back zero-copy.
//
// Two library products: `TorchportReader` (reading, mapping, conversion: links libzip only) and
// `Torchport` (everything: adds the ResNet engines with BLAS, verification, images). No target
// sets unsafe build flags, so both build as dependencies of other packages.
import PackageDescription

/// Apple platforms: BLAS from Accelerate (a system framework), so no OpenBLAS there.
let applePlatforms: [Platform] = [.macOS, .iOS, .tvOS, .watchOS, .visionOS]

let package = Package(
    name: "Torchport",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Torchport", targets: ["Torchport"]),
        .library(name: "TorchportReader", targets: ["TorchportReader"]),
        .executable(name: "torchport", targets: ["torchport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `make docs`: the DocC catalog, built with the ecosystem's plugin (no code of ours links it).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Public API
        // The reader product: no BLAS, no image libraries.
        // The core every stage shares: file bytes, tensor records, dtypes, hashing, casts, the
        // format detector, atomic writing, the error shape.
        .target(name: "TorchportCore", dependencies: ["CSHA256"]),
        .target(name: "TorchCheckpoint", dependencies: ["TorchportCore", "CZip"]),
        .target(name: "SafeTensors", dependencies: ["TorchportCore"]),
        .target(name: "StateDict", dependencies: ["TorchportCore"]),
        .target(name: "Conversion", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors", "StateDict"]),
        .target(name: "TorchportReader", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors", "StateDict", "Conversion"]),
        // The rest of the full product.
        .target(name: "ResNet",
                dependencies: ["TorchportCore", "StateDict", "CKernels",
                               .target(name: "COpenBLAS", condition: .when(platforms: [.linux]))],
                linkerSettings: [.linkedFramework("Accelerate", .when(platforms: applePlatforms))]),
        .target(name: "Verification", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors", "Conversion", "ResNet"]),
        .target(name: "Images", dependencies: ["TorchportCore", "CJPEG", "CPNG"]),
        // Class names (files, checkpoints, ImageNet's) and images in, predictions out.
        .target(name: "Classification", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors", "ResNet", "Images"]),
        .target(name: "Torchport",
                dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors", "StateDict", "Conversion", "TorchportReader",
                               "ResNet", "Verification", "Images", "Classification"]),
        .executableTarget(
            name: "torchport",
            dependencies: [
                "Torchport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Implementation details (system-library shims)
        .systemLibrary(name: "CZip", pkgConfig: "libzip", providers: [.apt(["libzip-dev"]), .brew(["libzip"])]),
        // Linux only (see ResNet's dependencies); Apple platforms use Accelerate.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // SHA-256 block compression with the x86 SHA instructions (Swift cannot emit them).
        .target(name: "CSHA256"),
        // The packed engine's convolution kernels (AVX-512, chosen at run time; see docs/performance.md)
        // and its thread pools, one C file per concern (plan, winograd, microkernels_avx512, conv,
        // layout, pool, profile, heap; see docs/design.md), compiled at SwiftPM's release default
        // (-O2): the micro-kernels' loops are unrolled by pragmas in the source, checked by
        // Benchmarks/kernel_codegen.py.
        .target(name: "CKernels"),
        .systemLibrary(name: "CJPEG", providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),

        // MARK: - Benchmarks (not a product: never reaches users)
        .executableTarget(name: "torchport-bench", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors"],
                          path: "Benchmarks/Sources/torchport-bench"),

        // MARK: - Fuzzing (built with -sanitize=fuzzer,address by `make fuzz`; a plain build replays files)
        .executableTarget(name: "torchport-fuzz", dependencies: ["TorchportCore", "TorchCheckpoint", "SafeTensors"],
                          path: "Fuzz/Sources/torchport-fuzz"),

        // MARK: - Tests
        .testTarget(name: "TorchportCoreTests", dependencies: ["TorchportCore", "SafeTensors"]),
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint", "TorchportCore"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "TorchportCore", "TorchCheckpoint"]),
        // Test-only helpers (the fixtures' manifest), shared by the test targets; never a product.
        .target(name: "_TestSupport", path: "Tests/_TestSupport"),
        .testTarget(name: "ResNetTests", dependencies: ["ResNet", "StateDict", "TorchCheckpoint", "TorchportCore", "CKernels", "_TestSupport"]),
        .testTarget(name: "ConversionTests", dependencies: ["Conversion", "Torchport", "TorchportCore", "_TestSupport"]),
        .testTarget(name: "ClassificationTests", dependencies: ["Classification", "ResNet", "Images", "TorchCheckpoint", "TorchportCore", "_TestSupport"]),
        .testTarget(name: "TorchportTests", dependencies: ["Torchport", "TorchportCore", "StateDict", "_TestSupport"]),
        .testTarget(name: "VerificationTests", dependencies: ["Verification"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images"]),
        .testTarget(name: "TorchportCLITests", dependencies: ["torchport", "Torchport"]),
    ]
)
