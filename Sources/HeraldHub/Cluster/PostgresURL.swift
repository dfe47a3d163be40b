// `postgres://user:password@host:port/database?sslmode=verify-full&sslrootcert=ca.pem` as
// PostgresNIO's connection configuration. A password may also come from `PGPASSWORD`, which
// keeps it out of `ps`.
import NIOCore
import NIOSSL
import PostgresNIO

/// A parsed PostgreSQL URL (libpq's URI form).
public struct PostgresURL: Sendable, CustomStringConvertible {
    /// libpq's `sslmode`, as far as it applies here.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// No TLS.
        case disable
        /// TLS if the server offers it, the certificate not checked (libpq: `allow`, `prefer`).
        case prefer
        /// TLS or no connection, the certificate not checked (libpq's `require`).
        case require
        /// TLS, the certificate signed by `sslrootcert` (or the system's roots), any host name.
        case verifyCA = "verify-ca"
        /// TLS, the certificate signed by `sslrootcert` (or the system's roots) and naming the host.
        case verifyFull = "verify-full"
    }

    /// Host name or address (`host` query parameter: a unix socket directory instead).
    public var host: String = "127.0.0.1"
    public var port: Int = 5432
    public var user: String = "postgres"
    public var password: String?
    public var database: String?
    /// A directory holding the server's unix socket (`?host=/var/run/postgresql`).
    public var socketDirectory: String?
    /// `?sslmode=` (default `prefer`, as libpq; a unix socket never uses TLS).
    public var tlsMode: TLSMode = .prefer
    /// `?sslrootcert=`: the PEM file of the certificate authorities to trust.
    public var rootCertificatePath: String?

    /// Parses `text`; `environmentPassword` (`PGPASSWORD`) is used when the URL has none.
    public init(parsing text: String, environmentPassword: String? = nil) throws(PostgresURLError) {
        var rest = Substring(text)
        guard let schemeEnd = rest.range(of: "://"),
            ["postgres", "postgresql"].contains(rest[..<schemeEnd.lowerBound])
        else { throw PostgresURLError("must start with postgres:// or postgresql://") }
        rest = rest[schemeEnd.upperBound...]
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        if let slash = rest.firstIndex(of: "/") {
            let name = try Self.decode(rest[rest.index(after: slash)...])
            database = name.isEmpty ? nil : name
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try Self.decode(credentials[..<colon])
                password = try Self.decode(credentials[credentials.index(after: colon)...])
            } else {
                user = try Self.decode(credentials)
            }
        }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else {
                throw PostgresURLError("the port must be a number from 1 to 65535")
            }
            port = number
            rest = rest[..<colon]
        }
        if rest.hasPrefix("["), rest.hasSuffix("]") { rest = rest.dropFirst().dropLast() }
        if !rest.isEmpty { host = try Self.decode(rest) }
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = parts.count > 1 ? try Self.decode(parts[1]) : ""
            switch key {
            case "sslmode":
                guard let mode = value == "allow" ? .prefer : TLSMode(rawValue: value) else {
                    throw PostgresURLError(
                        "sslmode=\(value) is not one of disable, allow, prefer, require, verify-ca, verify-full")
                }
                tlsMode = mode
            case "sslrootcert": rootCertificatePath = value
            case "host": socketDirectory = value.hasPrefix("/") ? value : nil
            case "user": user = value
            case "password": password = value
            case "application_name", "connect_timeout": break
            default:
                throw PostgresURLError("unknown parameter \(key) (known: sslmode, sslrootcert, host, user, password)")
            }
        }
        if password == nil, let environmentPassword, !environmentPassword.isEmpty { password = environmentPassword }
        tls = try Self.tls(mode: tlsMode, rootCertificatePath: rootCertificatePath)
    }

    /// The TLS setting of every connection, made once so that a bad certificate file stops the
    /// hub at startup instead of at its first connection.
    private var tls: PostgresConnection.Configuration.TLS = .disable

    private static func tls(mode: TLSMode, rootCertificatePath: String?) throws(PostgresURLError)
        -> PostgresConnection.Configuration.TLS
    {
        guard mode != .disable else { return .disable }
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable, .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: configuration.certificateVerification = .fullVerification
        }
        if let rootCertificatePath {
            configuration.trustRoots = .file(rootCertificatePath)
        }
        do {
            let context = try NIOSSLContext(configuration: configuration)
            return mode == .prefer ? .prefer(context) : .require(context)
        } catch {
            throw PostgresURLError("cannot set up TLS (sslrootcert \(rootCertificatePath ?? "none")): \(error)")
        }
    }

    /// The URL without its password, for logs and `stats`.
    public var description: String {
        let place = socketDirectory.map { "?host=\($0)" } ?? "?sslmode=\(tlsMode.rawValue)"
        let address = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(address):\(port)/\(database ?? user)\(place)"
    }

    /// PostgresNIO's configuration for one connection named `application` in `pg_stat_activity`.
    func connectionConfiguration(application: String, connectTimeout: TimeAmount) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(
                unixSocketPath: "\(socketDirectory)/.s.PGSQL.\(port)", username: user, password: password,
                database: database)
        } else {
            configuration = .init(
                host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = [("application_name", application)]
        return configuration
    }

    /// Undoes %XX escapes.
    private static func decode(_ text: Substring) throws(PostgresURLError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { throw PostgresURLError("a % escape must be followed by two hex digits") }
            bytes.append(value)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A `--cluster` URL that cannot be used.
public struct PostgresURLError: Error, CustomStringConvertible {
    public let description: String
    init(_ message: String) { description = "--cluster: \(message)" }
}
