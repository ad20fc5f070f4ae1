import Forwarding

// SPDX-License-Identifier: Apache-2.0
// Descriptors with an owner: closed exactly once, when the owner ends.
#if canImport(Glibc)
  import Glibc
#endif

/// A file descriptor this value owns. It cannot be copied, so exactly one owner closes it: when the
/// value ends (its deinit), or earlier by ``close()``. Others borrow ``raw`` (the loops keep it in a
/// plain `Int32` for the hot path) and never close it.
struct OwnedFD: ~Copyable {
  /// The descriptor number, for system calls.
  let raw: Int32

  /// Takes ownership of `raw` (an open descriptor nothing else will close).
  init(adopting raw: Int32) {
    precondition(raw >= 0, "OwnedFD: not a descriptor (\(raw))")
    self.raw = raw
  }

  deinit { Sys.close(raw) }

  /// Closes the descriptor now.
  consuming func close() {}
}

/// An ``OwnedFD`` behind a reference, for what must live in an array (a device's queues, a set of
/// eventfds): closed when the last reference goes.
final class SharedFD {
  let owned: OwnedFD
  var raw: Int32 { owned.raw }

  init(_ owned: consuming OwnedFD) { self.owned = owned }
}
