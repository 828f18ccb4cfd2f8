import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import Testing

@testable import Ticketlog
@testable import TicketlogServer

/// Tokens an attacker or a broken client might send, over a real loopback connection.
@Suite(.timeLimit(.minutes(3))) struct AuthTests {
    /// A JWT built by hand: `header.payload.signature`, base64url without padding.
    static func jwt(header: [String: Any], claims: [String: Any], secret: String?) throws -> String {
        func encode(_ object: [String: Any]) throws -> String {
            base64url(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }
        let signingInput = "\(try encode(header)).\(try encode(claims))"
        guard let secret else { return signingInput + "." }
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(signingInput.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return signingInput + "." + base64url(Data(mac))
    }

    static func base64url(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static let now = Date().timeIntervalSince1970
    nonisolated(unsafe) static let good: [String: Any] = ["sub": "ada", "role": "admin", "exp": now + 600, "iat": now]
    nonisolated(unsafe) static let hs256: [String: Any] = ["alg": "HS256", "typ": "JWT"]

    static let attacks: [(String, String?)] = {
        let secret = ServerFixture.secret
        var cases: [(String, String?)] = [
            ("no header", nil),
            ("not bearer", "Basic YWRhOnNlY3JldA=="),
            ("empty bearer", "Bearer "),
            ("garbage", "Bearer not.a.jwt"),
        ]
        func with(_ change: (inout [String: Any]) -> Void) -> [String: Any] {
            var claims = good
            change(&claims)
            return claims
        }
        let forged: [(String, [String: Any], [String: Any], String?)] = [
            ("alg none", ["alg": "none", "typ": "JWT"], good, nil),
            ("wrong key", hs256, good, "another-secret-that-is-32-bytes-long!!"),
            ("expired", hs256, with { $0["exp"] = now - 10 }, secret),
            ("future iat", hs256, with { $0["iat"] = now + 3_600 }, secret),
            ("no exp", hs256, with { $0["exp"] = nil }, secret),
            ("unknown role", hs256, with { $0["role"] = "superuser" }, secret),
            ("system role", hs256, with { $0["role"] = "system" }, secret),
            ("no sub", hs256, with { $0["sub"] = nil }, secret),
            ("HS512 with the right secret", ["alg": "HS512", "typ": "JWT"], good, secret),
            ("not valid before an hour from now (nbf)", hs256, with { $0["nbf"] = now + 3_600 }, secret),
            ("a critical header extension (crit)", ["alg": "HS256", "typ": "JWT", "crit": ["exp"]], good, secret),
            ("an escape sequence in the subject", hs256, with { $0["sub"] = "ada\u{1B}[2J" }, secret),
            ("a line break in the subject", hs256, with { $0["sub"] = "ada\n#99 forged" }, secret),
            ("a blank subject", hs256, with { $0["sub"] = "   " }, secret),
            ("a subject of 256 characters", hs256, with { $0["sub"] = String(repeating: "a", count: 256) }, secret),
        ]
        for (name, header, claims, key) in forged {
            cases.append((name, "Bearer " + (try! jwt(header: header, claims: claims, secret: key))))
        }
        return cases
    }()

    @Test(arguments: attacks.map(\.0))
    func refusedWith401(_ attack: String) async throws {
        let authorization = Self.attacks.first { $0.0 == attack }!.1
        let fixture = try await ServerFixture.make()
        try await fixture.app.test(.live) { client in
            var headers: HTTPFields = [:]
            if let authorization { headers[.authorization] = authorization }
            for (method, path) in [(HTTPRequest.Method.get, "/api/chat/channels"), (.post, "/api/chat/tickets/a/join")]
            {
                let response = try await client.execute(uri: path, method: method, headers: headers)
                #expect(response.status == .unauthorized, "\(attack): \(String(buffer: response.body))")
                #expect(response.errorCode == "unauthorized")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
        }
        #expect(try await fixture.store.headPosition() == 6)
    }

    @Test func aHandMadeTokenWithTheRightSecretIsAccepted() async throws {
        // The controls for the attacks above: the same construction, correctly signed; and a
        // token whose nbf has passed.
        let fixture = try await ServerFixture.make()
        var claims = Self.good
        claims["nbf"] = Self.now - 5
        for token in [
            try Self.jwt(header: Self.hs256, claims: Self.good, secret: ServerFixture.secret),
            try Self.jwt(header: Self.hs256, claims: claims, secret: ServerFixture.secret),
        ] {
            try await fixture.app.test(.live) { client in
                let response = try await client.execute(
                    uri: "/api/chat/channels", method: .get, headers: [.authorization: "Bearer \(token)"])
                #expect(response.status == .ok)
            }
        }
    }

    /// Verified tokens are remembered by their exact text: the same token again is let in
    /// without verifying it again, and any other text — the same claims with a changed signature
    /// or header — is verified (and refused) as if nothing had been seen.
    @Test func aRememberedTokenLetsInOnlyItsExactText() async throws {
        let fixture = try await ServerFixture.make()
        let token = try Self.jwt(header: Self.hs256, claims: Self.good, secret: ServerFixture.secret)
        var signature = Array(token.split(separator: ".")[2])
        signature[signature.count / 2] = signature[signature.count / 2] == "A" ? "B" : "A"
        let parts = token.split(separator: ".")
        let forged = [
            "\(parts[0]).\(parts[1]).\(String(signature))",
            try Self.jwt(header: Self.hs256, claims: Self.good, secret: String(repeating: "x", count: 40)),
            "\(parts[0]).\(parts[1]).",
        ]
        try await fixture.app.test(.live) { client in
            for _ in 0..<3 {
                let response = try await client.execute(
                    uri: "/api/chat/channels", method: .get, headers: [.authorization: "Bearer \(token)"])
                #expect(response.status == .ok)
            }
            for token in forged {
                let response = try await client.execute(
                    uri: "/api/chat/channels", method: .get, headers: [.authorization: "Bearer \(token)"])
                #expect(response.status == .unauthorized, "\(token)")
            }
        }
    }

    @Test func rememberedTokensKeepTheirTimes() {
        let tokens = VerifiedTokens(capacity: 3)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let kim = Caller(id: "kim", role: .creator)
        func remember(_ token: String) {
            tokens.remember(token, .init(caller: kim, expiresAt: now + 60, usableFrom: now - 10))
        }
        remember("a")
        #expect(tokens.caller(of: "a", at: now)?.caller == kim)
        #expect(tokens.caller(of: "b", at: now) == nil)
        #expect(tokens.caller(of: "a", at: now - 11) == nil, "before nbf less the skew")
        remember("a")
        #expect(tokens.caller(of: "a", at: now + 60) == nil, "expired")
        #expect(tokens.count == 0, "a token out of its times is forgotten")
        for name in ["t1", "t2", "t3"] { remember(name) }
        #expect(tokens.count == 3)
        remember("t4")
        #expect(tokens.count == 1, "a full cache starts over")
        #expect(tokens.caller(of: "t4", at: now)?.caller == kim)
    }

    @Test func chatTokensAreStreamUserTokens() async throws {
        let fixture = try await ServerFixture.make()
        let token = try await ServerFixture.token("kim", .creator)
        try await fixture.app.test(.live) { client in
            let first = try await client.execute(
                uri: "/api/chat/token", method: .get, headers: ServerFixture.headers(token))
            #expect(first.status == .ok)
            let body = try #require(first.json)
            #expect(body["userId"] as? String == "kim")
            #expect(body["apiKey"] as? String == "test-key")
            let chatToken = try #require(body["token"] as? String)
            // HS256 over the Stream secret, with user_id and whole-second iat/exp.
            let parts = chatToken.split(separator: ".")
            #expect(parts.count == 3)
            let signingInput = Data("\(parts[0]).\(parts[1])".utf8)
            let mac = HMAC<SHA256>.authenticationCode(
                for: signingInput, using: SymmetricKey(data: Data(ServerFixture.streamSecret.utf8)))
            #expect(Self.base64url(Data(mac)) == String(parts[2]))
            var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(
                of: "_", with: "/")
            while payload.count % 4 != 0 { payload += "=" }
            let claims = try #require(
                try JSONSerialization.jsonObject(with: Data(base64Encoded: payload)!) as? [String: Any])
            #expect(claims["user_id"] as? String == "kim")
            let iat = try #require(claims["iat"] as? Int)
            let exp = try #require(claims["exp"] as? Int)
            #expect(abs(Double(iat) - Date().timeIntervalSince1970) < 30)
            #expect(exp - iat == 24 * 3600)
            // Cached: the same token comes back.
            let second = try await client.execute(
                uri: "/api/chat/token", method: .get, headers: ServerFixture.headers(token))
            #expect(second.json?["token"] as? String == chatToken)
        }
    }

    @Test func shortSecretsAreAConfigurationError() async throws {
        let store = try EventStore.inMemory()
        var configuration = ServerFixture.configuration
        configuration.authSecret = "too-short"
        await #expect(throws: TicketlogServer.ConfigurationError.self) {
            _ = try await TicketlogServer.router(store: store, configuration: configuration)
        }
    }
}
