// A private PostgreSQL for the cluster tests: Debian's server binaries (installed through
// deploy/install-deps when missing), initdb into a temporary directory and a free loopback
// port, run as the `postgres` system user when the tests run as root (PostgreSQL refuses
// root), started once for the suite that asks for it and stopped by PID afterwards.
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A running PostgreSQL server of the tests.
final class PostgresServer: Sendable {
    let port: Int
    let directory: String
    let binDirectory: String
    private let process: ChildProcess
    private let counter = Mutex(0)

    @TaskLocal static var current: PostgresServer?

    private init(port: Int, directory: String, binDirectory: String, process: ChildProcess) {
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
        self.process = process
    }

    /// The server's bin directory (the newest under /usr/lib/postgresql), installing the package if needed.
    static func findBinaries() throws -> String {
        func newest() -> String? {
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            guard let version = versions.compactMap({ Int($0) }).max() else { return nil }
            let bin = "/usr/lib/postgresql/\(version)/bin"
            return FileManager.default.isExecutableFile(atPath: "\(bin)/postgres") ? bin : nil
        }
        if let found = newest() { return found }
        let install = Process()
        install.executableURL = URL(fileURLWithPath: "\(LiveStack.repositoryRoot)/deploy/install-deps")
        install.arguments = ["postgresql", "openssl"]
        try install.run()
        install.waitUntilExit()
        guard let found = newest() else {
            throw LiveStackError("PostgreSQL is not installed and deploy/install-deps postgresql did not install it")
        }
        return found
    }

    /// Whether commands must drop to the `postgres` user (they run as root).
    private static var asPostgresUser: Bool { getuid() == 0 }

    /// `path arguments…` as the server's user; waits and returns status and output.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        if asPostgresUser {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=postgres", "--regid=postgres", "--init-groups", path] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
        }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.currentDirectoryURL = URL(fileURLWithPath: "/tmp")
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// initdb, start on a free port, wait until it answers.
    static func start() async throws -> PostgresServer {
        let bin = try findBinaries()
        var template = Array("/tmp/herald-pg.XXXXXX".utf8CString)
        guard let pointer = mkdtemp(&template) else { throw LiveStackError("mkdtemp failed") }
        let directory = String(cString: pointer)
        if asPostgresUser {
            guard let user = getpwnam("postgres") else {
                throw LiveStackError("no postgres user (the Debian package creates it)")
            }
            chown(directory, user.pointee.pw_uid, user.pointee.pw_gid)
        }
        let initdb = try run(
            "\(bin)/initdb", ["-D", "\(directory)/data", "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
        guard initdb.status == 0 else { throw LiveStackError("initdb failed:\n\(initdb.output.suffix(2000))") }
        // A self-signed certificate for 127.0.0.1, so hubs can connect with TLS (sslmode=verify-full
        // and this file as sslrootcert); made as the server's user, which must own the key.
        let certificate = try run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "\(directory)/server.key",
                "-out", "\(directory)/server.crt",
            ])
        guard certificate.status == 0 else { throw LiveStackError("openssl failed:\n\(certificate.output)") }
        let port = try LiveStack.freePort()
        // fsync off: the tests need a server, not durability across power loss.
        let arguments = [
            "-D", "\(directory)/data", "-p", "\(port)", "-k", directory, "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "max_connections=60", "-c", "ssl=on",
            "-c", "ssl_cert_file=\(directory)/server.crt", "-c", "ssl_key_file=\(directory)/server.key",
        ]
        let process =
            asPostgresUser
            ? try ChildProcess.spawn(
                "/usr/bin/setpriv",
                arguments: ["--reuid=postgres", "--regid=postgres", "--init-groups", "\(bin)/postgres"] + arguments,
                environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], errorLog: "\(directory)/postgres.log")
            : try ChildProcess.spawn(
                "\(bin)/postgres", arguments: arguments, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"],
                errorLog: "\(directory)/postgres.log")
        let server = PostgresServer(port: port, directory: directory, binDirectory: bin, process: process)
        let deadline = Date().addingTimeInterval(30)
        while (try? server.sql("SELECT 1")) == nil {
            guard Date() < deadline else {
                let log = (try? String(contentsOfFile: "\(directory)/postgres.log", encoding: .utf8)) ?? ""
                await server.stop()
                throw LiveStackError("PostgreSQL did not start within 30 s:\n\(log.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return server
    }

    /// Fast shutdown (SIGINT), by PID; SIGKILL if it takes over 10 s.
    func stop() async {
        kill(process.pid, SIGINT)
        let deadline = Date().addingTimeInterval(10)
        var status: Int32 = 0
        while waitpid(process.pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(process.pid, SIGKILL)
                waitpid(process.pid, &status, 0)
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        close(process.output)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs `statement` with psql as the superuser; returns its unaligned output.
    @discardableResult
    func sql(_ statement: String, database: String = "postgres") throws -> String {
        let result = try Self.run(
            "\(binDirectory)/psql",
            [
                "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc",
                statement,
            ])
        guard result.status == 0 else { throw LiveStackError("psql: \(statement): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A new empty database for one test, and its URL for `HERALD_CLUSTER`.
    func makeDatabase() throws -> String {
        let number = counter.withLock { value in
            value += 1
            return value
        }
        let name = "herald_test_\(number)"
        try sql("CREATE DATABASE \(name)")
        return name
    }

    /// A login role of its own for one hub, so a test can cut that hub alone from the database.
    func makeRole(_ name: String) throws {
        try sql("CREATE ROLE \(name) LOGIN SUPERUSER")
    }

    func url(database: String, user: String = "postgres") -> String {
        "postgres://\(user)@127.0.0.1:\(port)/\(database)"
    }

    /// The server's self-signed certificate, to trust as `sslrootcert`.
    var certificatePath: String { "\(directory)/server.crt" }

    /// Whether every open session of `role` uses TLS (nil when it has none).
    func sessionsUseTLS(role: String) throws -> Bool? {
        let answer = try sql(
            """
            SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = '\(role)'
            """)
        return answer.isEmpty ? nil : answer == "t"
    }
}

/// Starts one private PostgreSQL for the suite it is applied to, and stops it afterwards.
struct PostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try await PostgresServer.start()
        do {
            try await PostgresServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == PostgresServerTrait {
    /// A private PostgreSQL server for the whole suite (`PostgresServer.current` inside it).
    static var postgresServer: Self { PostgresServerTrait() }
}
