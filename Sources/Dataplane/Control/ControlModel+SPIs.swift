// SPDX-License-Identifier: Apache-2.0
// `alloc_spi` / `release_spi`: inbound SPIs reserved for a controller before it installs them, so
// that two controllers (or a controller and the configuration file) do not pick the same one.
// Bounded in number (limits.tunnels) and in time (300 s, as Linux lets a larval SA expire).
import ESP
import Forwarding

extension ControlModel {
  /// How long a reservation lasts unless an SA installs it or `release_spi` frees it (ns).
  static let reservationLifetime: UInt64 = 300_000_000_000

  /// The most reservations held at once (`limits.tunnels`: one per CHILD_SA being set up).
  var reservationLimit: Int { base.limits.tunnels }

  /// `alloc_spi`: an SPI in `min...max` (`min` ≥ 0x100) that no inbound SA has and no one reserved,
  /// reserved until it is installed, released or its lifetime ends.
  /// - Returns: the answer's `,"spi":"0x…"`, or the refusal (nothing reserved).
  func allocSPI(min: UInt32, max: UInt32, now: UInt64) -> Result<[(key: String, value: JSONValue)], ControlError> {
    expireReservations(now: now)
    guard reserved.count < reservationLimit else {
      return .failure(
        .limit(
          "espd holds \(reserved.count) reserved SPIs, the most limits.tunnels allows (install them, or release_spi)"))
    }
    let lo = Swift.max(min, ControlRequest.lowestSPI)
    guard lo <= max else { return .failure(ControlError("max: expected an SPI of 0x100 or more, got \(spiText(max))")) }
    func free(_ s: UInt32) -> Bool { inboundSPIs[s] == nil && reserved[s] == nil }
    var found: UInt32? = nil
    for _ in 0..<16 {
      let s = UInt32.random(in: lo...max)
      if free(s) {
        found = s
        break
      }
    }
    if found == nil {
      // Of `used + 1` consecutive values at least one is free (unless the range is smaller).
      let size = UInt64(max - lo) + 1
      let span = Swift.min(size, UInt64(inboundSPIs.count + reserved.count + 1))
      let start = UInt64(UInt32.random(in: lo...max) - lo)
      for k in 0..<span {
        let s = UInt32(UInt64(lo) + (start + k) % size)
        if free(s) {
          found = s
          break
        }
      }
    }
    guard let spi = found else {
      return .failure(ControlError("no free SPI in \(spiText(lo))-\(spiText(max)): each one is in use or reserved"))
    }
    let until = now &+ ControlModel.reservationLifetime
    reserved[spi] = until
    reservedOrder.append((spi, until))
    if reservedOrder.count - reservedHead > 2 * Swift.max(1024, reserved.count) { compactReservations() }
    return .success([("spi", .string(spiText(spi)))])
  }

  /// `release_spi`: frees a reservation (refused, changing nothing, for an SPI not reserved).
  func releaseSPI(_ spi: UInt32, now: UInt64) -> Result<Void, ControlError> {
    expireReservations(now: now)
    guard reserved.removeValue(forKey: spi) != nil else {
      if let s = inboundSPIs[spi] {
        return .failure(
          ControlError(
            "spi \(spiText(spi)) is an inbound SA of tunnel \(JSONValue.quoted(slots[Int(s)]?.config.name ?? "?")), not a reservation (delete_sa it)"
          ))
      }
      return .failure(ControlError("spi \(spiText(spi)) is not reserved (never reserved, released, or lapsed)"))
    }
    return .success(())
  }

  /// Whether `spi` is reserved now.
  func isReserved(_ spi: UInt32, now: UInt64) -> Bool {
    expireReservations(now: now)
    return reserved[spi] != nil
  }

  /// Ends the reservations whose lifetime is over (each entry is looked at once: amortised constant).
  func expireReservations(now: UInt64) {
    while reservedHead < reservedOrder.count, reservedOrder[reservedHead].until <= now {
      let (spi, until) = reservedOrder[reservedHead]
      if reserved[spi] == until { reserved[spi] = nil }
      reservedHead += 1
    }
    if reservedHead >= 1024 && reservedHead * 2 >= reservedOrder.count {
      reservedOrder.removeFirst(reservedHead)
      reservedHead = 0
    }
  }

  /// Drops the order's entries of reservations already installed or released (bounded memory when
  /// a controller reserves and releases quickly).
  private func compactReservations() {
    reservedOrder = reservedOrder[reservedHead...].filter { reserved[$0.spi] == $0.until }
    reservedHead = 0
  }

  private func spiText(_ spi: UInt32) -> String { ConfigParser.spiText(spi) }
}
