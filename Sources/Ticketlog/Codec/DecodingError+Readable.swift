extension DecodingError {
    /// The error in words a person can act on: which field, what was wrong
    /// (`missing field 'id'`, `actor.role is invalid: ...`, `not valid JSON`).
    public var readableDescription: String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the value" : keys.joined(separator: ".")
        }
        switch self {
        case .keyNotFound(let key, let context):
            return "missing field '\(key.stringValue)'" + (context.codingPath.isEmpty ? "" : " in \(path(context))")
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)) has the wrong type: \(context.debugDescription)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "\(path(context)) is invalid: \(context.debugDescription)"
        @unknown default:
            return "\(self)"
        }
    }
}
