// SPDX-License-Identifier: Apache-2.0
// What an io_uring submission is for, carried through the kernel in its 64-bit user data and read
// back from the completion.

/// The user data of a submission: what it is (the high byte) and an index (the low 32 bits: a
/// socket, a slot, a descriptor, a worker). Bits 32 to 55 are zero. A plain value the compiler
/// folds into the shifts it stands for.
struct URingTag: Equatable {
  /// What a completion belongs to.
  enum Kind: UInt8, CaseIterable {
    case receive = 1  // multishot recvmsg on socket `index`
    case tunRead = 2  // read into TUN slot `index`
    case send = 3  // sendmsg of TUN slot `index`
    case tunWrite = 4  // write of receive buffer: index = group << 16 | buffer id
    case signal = 5
    case punt = 6  // poll on the punt socket
    case mailbox = 7  // read of the control plane's eventfd
    case tunWriteV = 8  // writev of TUN write descriptor `index` (virtio-net header, packets)
    case handoff = 9  // read of this worker's wake eventfd (another worker published packets)
    case wake = 10  // write to worker `index`'s wake eventfd
  }

  var kind: Kind
  var index: UInt32

  @inline(__always)
  init(_ kind: Kind, _ index: UInt32) {
    self.kind = kind
    self.index = index
  }

  /// Reads a completion's user data; nil for a word no submission of the loop carries (liburing's
  /// own timeouts use all ones).
  @inline(__always)
  init?(userData: UInt64) {
    guard let kind = Kind(rawValue: UInt8(truncatingIfNeeded: userData >> 56)) else { return nil }
    self.kind = kind
    index = UInt32(truncatingIfNeeded: userData)
  }

  /// The word for `io_uring_sqe_set_data64`.
  @inline(__always)
  var userData: UInt64 { UInt64(kind.rawValue) << 56 | UInt64(index) }
}
