import Testing
@testable import Ticketlog
@Test func placeholder() { #expect(1 == 1) }
