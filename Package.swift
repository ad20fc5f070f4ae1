// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// espd: a userspace ESP-in-UDP (RFC 4303, RFC 3948) dataplane.
import PackageDescription

let package = Package(
  name: "espd",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "espd", targets: ["espd"]),
    .executable(name: "bench", targets: ["Bench"]),
    .library(name: "ESP", targets: ["ESP"]),
    .library(name: "UDPEncap", targets: ["UDPEncap"]),
    .library(name: "Forwarding", targets: ["Forwarding"]),
    .library(name: "Dataplane", targets: ["Dataplane"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
  ],
  targets: [
    // MARK: C shims (system libraries found through pkg-config)
    .systemLibrary(
      name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
    .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
    .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
    // Linux headers Swift cannot use directly, the GNU-only calls, and the SPI-steering eBPF program.
    // Only CLinux.c sees glibc with _GNU_SOURCE; no Swift module does (see CLinux.h).
    .target(name: "CLinux", cSettings: [.define("_GNU_SOURCE")]),
    // Counts heap allocations per thread (interposes malloc); linked only by tests and `bench`.
    .target(name: "CAllocCounter"),
    // Relaxed atomics on plain words: counters one loop writes and the control thread reads.
    .target(name: "CAtomics"),

    // MARK: Libraries
    .target(name: "ESP", dependencies: ["CCrypto", "CAtomics"]),
    .target(name: "UDPEncap"),
    // The forwarding core: configuration, lookup tables, the packet paths, offloads. No I/O.
    .target(name: "Forwarding", dependencies: ["ESP", "UDPEncap", "CAtomics"]),
    // The I/O module: TUN, sockets, netlink, the loops, workers, the control server, metrics, captures.
    .target(
      name: "Dataplane",
      dependencies: [
        "Forwarding", "ESP", "UDPEncap", "CURing", "CLinux", "CPcap", "CAtomics",
        .product(name: "Logging", package: "swift-log"),
      ]),

    // MARK: Executables
    .executableTarget(
      name: "espd",
      dependencies: [
        "Dataplane", "Forwarding", "ESP", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
    .executableTarget(
      name: "Bench",
      dependencies: [
        "ESP", "UDPEncap", "Forwarding", "Dataplane", "CCrypto", "CAllocCounter",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),

    // MARK: Tests
    .testTarget(
      name: "ESPTests", dependencies: ["ESP", "CAllocCounter"],
      resources: [.copy("Vectors")]),
    .testTarget(name: "UDPEncapTests", dependencies: ["UDPEncap"]),
    .testTarget(name: "DataplaneTests", dependencies: ["Dataplane", "Forwarding", "ESP", "CLinux"]),
    .testTarget(
      name: "espdTests",
      dependencies: [
        "espd", "Forwarding", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]),
  ],
  swiftLanguageModes: [.v6]
)

// MARK: Fuzz targets (only with ESPD_FUZZ=1: scripts/fuzz.sh builds them with --sanitize=fuzzer)
// Each is an executable exporting LLVMFuzzerTestOneInput; without libFuzzer it would have no main,
// so ordinary builds leave them out.
if Context.environment["ESPD_FUZZ"] != nil {
  let fuzzFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]
  package.targets.append(
    .target(
      name: "FuzzSupport", dependencies: ["ESP", "UDPEncap", "Forwarding", "Dataplane"], path: "Tests/Fuzz/Support"))
  for name in ["FuzzClassify", "FuzzESPOpen", "FuzzInbound", "FuzzPcap", "FuzzConfig", "FuzzControl"] {
    package.targets.append(
      .executableTarget(
        name: name, dependencies: ["FuzzSupport", "ESP", "UDPEncap", "Forwarding", "Dataplane"],
        path: "Tests/Fuzz/\(name)",
        swiftSettings: fuzzFlags))
    package.products.append(.executable(name: name, targets: [name]))
  }
}
