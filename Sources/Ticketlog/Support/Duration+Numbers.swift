/// A `Duration` as the numbers other APIs want: the one conversion of the package (not public:
/// an embedder's own extensions of `Duration` must not collide with ours).
extension Duration {
    /// The duration in seconds, fractions included.
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    /// The duration in whole nanoseconds.
    package var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
