// SPDX-License-Identifier: Apache-2.0
// Reading whole small files (configurations, /proc entries) without Foundation.

#if canImport(Glibc)
  import Glibc
#endif

/// Whole-file reads for the control path.
public enum FileIO {
  /// Reads at most `limit` bytes of the file at `path`.
  /// - Returns: the bytes, or the `strerror` text of why it could not be read.
  public static func read(_ path: String, limit: Int = 16 << 20) -> Result<[UInt8], FileError> {
    guard let f = fopen(path, "rb") else {
      return .failure(FileError(path: path, reason: String(cString: strerror(errno))))
    }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = fread(&buffer, 1, buffer.count, f)
      if n > 0 { out += buffer[0..<n] }
      if out.count > limit { return .failure(FileError(path: path, reason: "larger than \(limit) bytes")) }
      if n < buffer.count {
        if ferror(f) != 0 { return .failure(FileError(path: path, reason: String(cString: strerror(errno)))) }
        break
      }
    }
    return .success(out)
  }

  /// Writes `text` to an existing file such as a /proc/sys entry.
  /// - Returns: false if the file cannot be opened (for a sysctl: the kernel lacks it).
  @discardableResult
  public static func write(_ text: String, to path: String) -> Bool {
    guard let f = fopen(path, "w") else { return false }
    fputs(text, f)
    return fclose(f) == 0
  }

  /// Reads a text file as UTF-8 (invalid sequences replaced).
  public static func readText(_ path: String, limit: Int = 16 << 20) -> Result<String, FileError> {
    Self.read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
  }
}

/// A file that could not be read: its path and why.
public struct FileError: Error, CustomStringConvertible {
  public let path: String
  public let reason: String
  public var description: String { "cannot read \(path): \(reason)" }
}
