// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SegKit",
    products: [
        .library(name: "SegKitEngine", targets: ["SegKitEngine"]),
        .library(name: "SegKitSupport", targets: ["SegKitSupport"]),
        .library(name: "HDF5", targets: ["HDF5"]),
        .library(name: "SegKitKeras", targets: ["SegKitKeras"]),
        .library(name: "SegKit", targets: ["SegKit"]),
        .executable(name: "segkit", targets: ["segkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // System libraries, found by pkg-config so `swift build` needs no flags.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLibPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CLibJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CZlibGzip", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // JSON, atomic writes, scratch files and the error convention every
        // other target shares.
        .target(name: "SegKitSupport"),
        .target(name: "HDF5", dependencies: ["CHDF5", "SegKitSupport"]),
        // libpng reports errors by longjmp, which Swift cannot catch: reading and
        // writing live in C, which keeps every jump inside it.
        .target(name: "CPNG", dependencies: ["CLibPNG"]),
        // libjpeg-turbo's fatal errors jump out of the decoder the same way: C again.
        .target(name: "CJPEG", dependencies: ["CLibJPEG"]),
        // The engine's few hand-written C kernels (direct convolution for layers
        // with few channels, compiled per vector ISA) and the allocator policy.
        .target(name: "CKernels"),
        .target(
            name: "SegKitEngine",
            dependencies: ["COpenBLAS", "CKernels", "SegKitSupport"]
        ),
        .target(
            name: "SegKitKeras",
            dependencies: ["SegKitSupport", "SegKitEngine", "HDF5", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        .target(name: "SegKit", dependencies: ["SegKitSupport", "SegKitEngine", "SegKitKeras", "HDF5", "CZlibGzip", "CPNG", "CJPEG", .product(name: "Yams", package: "Yams")]),
        .executableTarget(
            name: "segkit",
            dependencies: [
                "SegKit", "SegKitSupport", "SegKitEngine", "SegKitKeras", "HDF5",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The fuzzing harness: mutated Keras files, data, segmenters and command lines
        // through the `segkit` binary in child processes.
        .executableTarget(
            name: "segkit-fuzz",
            dependencies: ["SegKit", "SegKitSupport", "SegKitEngine", "SegKitKeras", "HDF5", "CHDF5", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        .testTarget(name: "SegKitEngineTests", dependencies: ["SegKitEngine"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["CHDF5", "COpenBLAS", "SegKitEngine"]),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "CHDF5"]),
        // The Keras-written fixtures and Keras's expected outputs, shared by the test targets.
        .target(name: "TestFixtures", dependencies: ["SegKitSupport", "SegKitKeras", "SegKitEngine", "HDF5"], path: "Tests/TestFixtures"),
        .testTarget(name: "SegKitKerasTests", dependencies: ["SegKitSupport", "SegKitKeras", "SegKitEngine", "HDF5", "TestFixtures"]),
        .testTarget(name: "SegKitTests", dependencies: ["SegKitSupport", "SegKit", "SegKitKeras", "SegKitEngine", "HDF5", "TestFixtures"]),
        // Runs the built `segkit` binary: exit codes and messages as a user sees them.
        .testTarget(name: "SegKitCLITests", dependencies: ["SegKitSupport", "segkit", "SegKitEngine", "SegKit", "SegKitKeras", "HDF5"]),
    ]
)
