// swift-tools-version:6.1
// SPDX-License-Identifier: Apache-2.0
// espd: a userspace ESP-in-UDP (RFC 4303, RFC 3948) dataplane.
import PackageDescription

/// Release builds of the packet-path modules drop the dynamic exclusivity checks: the hot path
/// mutates SA state (sequence counter, replay window) through `final class` properties, and each
/// such access would otherwise cost a runtime begin/end-access pair per packet. Exclusivity is still
/// enforced statically, and debug builds (and the test suite) keep the dynamic checks.
let hotPath: [SwiftSetting] = [
  .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

/// Every Swift target sees glibc with _GNU_SOURCE, as the C shims do (recvmmsg, in6_pktinfo and
/// liburing need it): Clang modules that include the same glibc headers under different feature
/// macros (fd_set's member is `fds_bits` with them, `__fds_bits` without) cannot be loaded together.
let gnu: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-D_GNU_SOURCE"])]

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
    .systemLibrary(
      name: "CIO", pkgConfig: "liburing", providers: [.apt(["liburing-dev", "libpcap-dev"])]),
    // Counts heap allocations per thread (interposes malloc); linked only by tests and `bench`.
    .target(name: "CAllocCounter"),
    // Relaxed atomics on plain words: counters one loop writes and the control thread reads.
    .target(name: "CAtomics"),

    // MARK: Libraries
    .target(name: "ESP", dependencies: ["CCrypto", "CAtomics"], swiftSettings: hotPath + gnu),
    .target(name: "UDPEncap", swiftSettings: hotPath + gnu),
    // The forwarding core: configuration, lookup tables, the packet paths, offloads. No I/O.
    .target(name: "Forwarding", dependencies: ["ESP", "UDPEncap", "CAtomics"], swiftSettings: hotPath + gnu),
    // The I/O module: TUN, sockets, netlink, the loops, workers, the control server, metrics, captures.
    .target(
      name: "Dataplane",
      dependencies: [
        "Forwarding", "ESP", "UDPEncap", "CIO", "CAtomics", .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: hotPath + gnu),

    // MARK: Executables
    .executableTarget(
      name: "espd",
      dependencies: [
        "Dataplane", "Forwarding", "ESP", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: gnu),
    .executableTarget(
      name: "Bench",
      dependencies: [
        "ESP", "UDPEncap", "Forwarding", "Dataplane", "CCrypto", "CAllocCounter",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: hotPath + gnu),

    // MARK: Tests
    .testTarget(
      name: "ESPTests", dependencies: ["ESP", "CAllocCounter"],
      resources: [.copy("Vectors")], swiftSettings: gnu),
    .testTarget(name: "UDPEncapTests", dependencies: ["UDPEncap"], swiftSettings: gnu),
    .testTarget(name: "DataplaneTests", dependencies: ["Dataplane", "Forwarding", "ESP"], swiftSettings: gnu),
  ],
  swiftLanguageModes: [.v6]
)

// MARK: Fuzz targets (only with ESPD_FUZZ=1: scripts/fuzz.sh builds them with --sanitize=fuzzer)
// Each is an executable exporting LLVMFuzzerTestOneInput; without libFuzzer it would have no main,
// so ordinary builds leave them out.
if Context.environment["ESPD_FUZZ"] != nil {
  let fuzzFlags: [SwiftSetting] = gnu + [.unsafeFlags(["-parse-as-library"])]
  package.targets.append(
    .target(
      name: "FuzzSupport", dependencies: ["ESP", "UDPEncap", "Forwarding", "Dataplane"], path: "Tests/Fuzz/Support",
      swiftSettings: gnu))
  for name in ["FuzzClassify", "FuzzESPOpen", "FuzzInbound", "FuzzPcap", "FuzzConfig", "FuzzControl"] {
    package.targets.append(
      .executableTarget(
        name: name, dependencies: ["FuzzSupport", "ESP", "UDPEncap", "Forwarding", "Dataplane"],
        path: "Tests/Fuzz/\(name)",
        swiftSettings: fuzzFlags))
    package.products.append(.executable(name: name, targets: [name]))
  }
}
