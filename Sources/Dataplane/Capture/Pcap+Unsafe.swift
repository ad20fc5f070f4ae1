// SPDX-License-Identifier: Apache-2.0
// libpcap file reading (pcap and pcapng) and raw-IP pcap writing, wrapped for `espd replay`.
import CLinux
import CPcap

/// Reads packets from a pcap or pcapng file through libpcap. Not thread-safe.
public final class PcapReader {
  let handle: OpaquePointer
  /// The capture's link type (nil when espd cannot read it).
  public let linkType: LinkType?
  /// The raw DLT value, for error messages.
  public let rawLinkType: Int32

  /// Opens `path`.
  /// - Throws: ``ReplayError/open(_:)`` with libpcap's message.
  public init(path: String) throws(ReplayError) {
    var errbuf = [CChar](repeating: 0, count: Int(PCAP_ERRBUF_SIZE) + 1)
    guard let h = pcap_open_offline(path, &errbuf) else {
      throw .open(String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    handle = h
    rawLinkType = pcap_datalink(h)
    linkType = LinkType(rawValue: rawLinkType)
  }

  deinit { pcap_close(handle) }

  /// One captured packet: its timestamp and bytes (valid until the next call).
  public struct Packet {
    public var seconds: Int
    public var microseconds: Int
    public var bytes: UnsafeRawBufferPointer
  }

  /// The next packet, nil at the end of the file.
  /// - Throws: ``ReplayError/damaged(_:)`` where the file is truncated or corrupt.
  public func next() throws(ReplayError) -> Packet? {
    var header: UnsafeMutablePointer<pcap_pkthdr>? = nil
    var data: UnsafePointer<UInt8>? = nil
    switch pcap_next_ex(handle, &header, &data) {
    case 1:
      guard let h = header?.pointee, let d = data else { return nil }
      return Packet(
        seconds: Int(h.ts.tv_sec), microseconds: Int(h.ts.tv_usec),
        bytes: UnsafeRawBufferPointer(start: d, count: Int(h.caplen)))
    case PCAP_ERROR_BREAK:  // -2: end of file
      return nil
    default:
      throw .damaged(String(cString: pcap_geterr(handle)))
    }
  }
}

/// Writes raw IP packets (link type RAW, 101) to a pcap file. Not thread-safe.
public final class PcapWriter {
  let dead: OpaquePointer
  let dumper: OpaquePointer
  public private(set) var written = 0

  /// Creates (or truncates) `path`.
  /// - Throws: ``ReplayError/create(_:)`` with libpcap's message.
  public init(path: String) throws(ReplayError) {
    guard let d = pcap_open_dead(DLT_RAW, 262_144) else { throw .create("pcap_open_dead failed") }
    guard let w = pcap_dump_open(d, path) else {
      let message = String(cString: pcap_geterr(d))
      pcap_close(d)
      throw .create(message)
    }
    dead = d
    dumper = w
  }

  deinit {
    pcap_dump_close(dumper)
    pcap_close(dead)
  }

  /// Appends one packet with the given timestamp.
  public func write(_ bytes: UnsafeRawBufferPointer, seconds: Int, microseconds: Int) {
    var h = pcap_pkthdr()
    h.ts.tv_sec = seconds
    h.ts.tv_usec = microseconds
    h.caplen = UInt32(bytes.count)
    h.len = UInt32(bytes.count)
    guard let base = bytes.baseAddress else { return }
    pcap_dump(
      UnsafeMutableRawPointer(dumper).assumingMemoryBound(to: UInt8.self), &h, base.assumingMemoryBound(to: UInt8.self))
    written += 1
  }

  /// Flushes buffered packets to the file.
  public func flush() { pcap_dump_flush(dumper) }
}

/// Why a replay could not read or write its files.
public enum ReplayError: Error, Equatable, CustomStringConvertible {
  case open(String)
  case create(String)
  case damaged(String)
  case linkType(Int32)

  public var description: String {
    switch self {
    case .open(let m): "cannot read the input capture: \(m)"
    case .create(let m): "cannot write the output capture: \(m)"
    case .damaged(let m): m
    case .linkType(let t): "link type \(t) is not supported (supported: \(LinkType.supportedNames))"
    }
  }
}
