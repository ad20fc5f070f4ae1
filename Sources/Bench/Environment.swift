// SPDX-License-Identifier: Apache-2.0
// The header line of a benchmark run: CPU, kernel, Swift version, commit, build configuration.

#if canImport(Glibc)
  import Glibc
#endif

enum BenchEnvironment {
  /// Prints the header object that every run starts with.
  static func printHeader() {
    var fields: [(String, JSONValue)] = [("header", .string("espd bench"))]
    fields.append(("cpu", .string(cpuModel())))
    fields.append(("cores", .int(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))))
    fields.append(("kernel", .string(kernel())))
    fields.append(("swift", .string(swiftVersion)))
    fields.append(("commit", .string(commit())))
    #if DEBUG
      fields.append(("build", .string("debug (figures are not meaningful: use -c release)")))
    #else
      fields.append(("build", .string("release")))
    #endif
    printJSONLine(fields)
  }

  static var swiftVersion: String {
    #if compiler(>=6.3)
      "6.3+"
    #elseif compiler(>=6.2)
      "6.2"
    #else
      "6.x"
    #endif
  }

  static func readFile(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = fread(&buf, 1, buf.count, f)
      if n <= 0 { break }
      out += buf[0..<n]
      if out.count > 1 << 20 { break }
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func cpuModel() -> String {
    guard let info = readFile("/proc/cpuinfo") else { return "unknown" }
    for line in info.split(separator: "\n") where line.hasPrefix("model name") {
      if let colon = line.firstIndex(of: ":") {
        return String(line[line.index(after: colon)...].drop(while: { $0 == " " }))
      }
    }
    return "unknown"
  }

  static func kernel() -> String {
    var u = utsname()
    uname(&u)
    return withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
  }

  /// The commit from the environment (ESPD_COMMIT) or from .git in the working directory.
  static func commit() -> String {
    if let c = getenv("ESPD_COMMIT") { return String(cString: c) }
    guard let head = readFile(".git/HEAD")?.split(separator: "\n").first else { return "unknown" }
    if head.hasPrefix("ref: ") {
      let ref = head.dropFirst(5)
      return readFile(".git/" + ref)?.split(separator: "\n").first.map { String($0.prefix(12)) } ?? "unknown"
    }
    return String(head.prefix(12))
  }
}
