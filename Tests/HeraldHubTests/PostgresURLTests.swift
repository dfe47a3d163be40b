// `--cluster` URLs: libpq's URI form, the TLS modes, and clear errors for what cannot be used.
import Foundation
import Testing

@testable import HeraldHub

@Suite struct PostgresURLTests {
    @Test func fullURL() throws {
        let url = try PostgresURL(parsing: "postgresql://herald:s%40cret@db.internal:6543/events")
        #expect(url.user == "herald")
        #expect(url.password == "s@cret")
        #expect(url.host == "db.internal")
        #expect(url.port == 6543)
        #expect(url.database == "events")
        #expect(url.tlsMode == .prefer, "libpq's default")
        #expect(url.description == "postgres://herald@db.internal:6543/events?sslmode=prefer", "no password")
    }

    @Test func passwordFromTheEnvironmentOnlyWhenTheURLHasNone() throws {
        #expect(try PostgresURL(parsing: "postgres://u@h/d", environmentPassword: "env").password == "env")
        #expect(try PostgresURL(parsing: "postgres://u:url@h/d", environmentPassword: "env").password == "url")
    }

    @Test func unixSocketDirectory() throws {
        let url = try PostgresURL(parsing: "postgres://herald@/herald?host=/var/run/postgresql")
        #expect(url.socketDirectory == "/var/run/postgresql")
        #expect(url.description.hasSuffix("?host=/var/run/postgresql"))
    }

    @Test(arguments: [
        ("disable", PostgresURL.TLSMode.disable), ("allow", .prefer), ("prefer", .prefer), ("require", .require),
        ("verify-ca", .verifyCA), ("verify-full", .verifyFull),
    ])
    func tlsModes(value: String, mode: PostgresURL.TLSMode) throws {
        #expect(try PostgresURL(parsing: "postgres://u@127.0.0.1/d?sslmode=\(value)").tlsMode == mode)
    }

    @Test func rootCertificateThatIsMissingStopsAtOnce() {
        #expect {
            try PostgresURL(
                parsing: "postgres://u@127.0.0.1/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        } throws: { error in
            "\(error)".contains("cannot set up TLS") && "\(error)".contains("/nonexistent/ca.pem")
        }
    }

    @Test(arguments: [
        ("mysql://u@h/d", "must start with postgres://"),
        ("postgres://u@h:99999/d", "port must be a number"),
        ("postgres://u@h/d?sslmode=sometimes", "sslmode=sometimes is not one of"),
        ("postgres://u@h/d?options=x", "unknown parameter options"),
        ("postgres://u:%zz@h/d", "% escape"),
    ])
    func refusals(url: String, message: String) {
        #expect {
            try PostgresURL(parsing: url)
        } throws: { error in
            "\(error)".hasPrefix("--cluster: ") && "\(error)".contains(message)
        }
    }
}
