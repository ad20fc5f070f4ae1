// SPDX-License-Identifier: Apache-2.0
// The io_uring user data: what a submission is for, encoded and read back.
import Testing

@testable import Dataplane

@Suite struct URingTagTests {
  @Test func userDataRoundTrips() {
    for kind in URingTag.Kind.allCases {
      for index: UInt32 in [0, 1, 0xFFFF, 0x0001_0002, .max] {
        let tag = URingTag(kind, index)
        #expect(tag.userData >> 56 == UInt64(kind.rawValue) && tag.userData & 0xFFFF_FFFF == UInt64(index))
        #expect(tag.userData & 0x00FF_FFFF_0000_0000 == 0)
        #expect(URingTag(userData: tag.userData) == tag)
      }
    }
  }

  @Test func foreignUserDataIsNotATag() {
    #expect(URingTag(userData: 0) == nil)  // kind 0 is none
    #expect(URingTag(userData: .max) == nil)  // liburing's timeout
    #expect(URingTag(userData: 11 << 56) == nil)
    // The middle bits are not part of the index.
    #expect(URingTag(userData: 3 << 56 | 0x00AB_0000_0000_0007) == URingTag(.send, 7))
  }
}
