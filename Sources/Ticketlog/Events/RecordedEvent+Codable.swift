extension RecordedEvent: Codable {
    private enum CodingKeys: String, CodingKey {
        case position, version
    }

    /// The event's canonical body fields plus `position` and `version`: one NDJSON line of
    /// `ticketlog read`, and the shape exports build on.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(position, forKey: .position)
        try container.encode(version, forKey: .version)
        try EventBody(proposed, stream: stream, recordedAt: recordedAt).encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let body = try EventBody(from: decoder)
        self = body.recorded(
            position: try container.decode(Int64.self, forKey: .position),
            version: try container.decode(Int64.self, forKey: .version))
    }
}

extension RecordedEvent {
    /// One line of JSON with sorted keys, e.g. for NDJSON output.
    public func jsonLine() throws -> String {
        String(decoding: try CanonicalJSON.encode(self), as: UTF8.self)
    }
}
