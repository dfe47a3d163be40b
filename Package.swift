// swift-tools-version: 6.0
// Herald: live updates over Server-Sent Events, behind nginx. See README.md and ../shared/DESIGN.md.
import PackageDescription

let package = Package(
    name: "Herald",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "herald-hub", targets: ["herald-hub"]),
        .executable(name: "herald-worker", targets: ["herald-worker"]),
        .executable(name: "heraldctl", targets: ["heraldctl"]),
        .executable(name: "herald-bench", targets: ["herald-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // Cluster mode: hubs on several machines share one ordered event log in PostgreSQL.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // TLS to the cluster database (postgres-nio builds it anyway).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Occupancy webhooks: POSTs to the operator's receivers, signed with HMAC-SHA256.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // Wire format of Server-Sent Events: encoder and parser, no I/O.
        .target(name: "SSE"),
        // Debian's libfcgi (fcgiapp.h, fastcgi.h) as a Swift module.
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        // Types shared by hub, workers and heraldctl: event ids, channel names, hub frames, admin lines.
        .target(
            name: "HeraldProtocol",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // An EventSource-like client and one-shot HTTP requests on SwiftNIO (tests, benchmark).
        .target(
            name: "HeraldClient",
            dependencies: [
                "SSE", "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Listening and connecting unix socket files (modes, stale files, readiness by rename).
        .target(name: "SocketFiles"),
        // Liveness: event loops prove they turn; only then are the watchdogs fed (systemd's
        // sd_notify, spoken by hand, and deploy/run's watchdog file). Shared by hub and worker.
        .target(
            name: "Liveness",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Stats in the Prometheus text format (swift-prometheus).
        .target(
            name: "HeraldMetrics",
            dependencies: ["HeraldProtocol", .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        // The hub: sequencing, channel state, worker and admin servers.
        .target(
            name: "HeraldHub",
            dependencies: [
                "HeraldProtocol", "SocketFiles", "HeraldMetrics", "Liveness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // Cluster mode (--cluster postgres://…): the shared event log.
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // Occupancy webhooks.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The worker: FastCGI front (libfcgi threads), SSE streams (SwiftNIO), hub link.
        .target(
            name: "HeraldWorker",
            dependencies: [
                "SSE", "CFastCGI", "HeraldProtocol", "SocketFiles", "HeraldMetrics", "Liveness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // Subscriber tokens for private channels (JWT, HS256).
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .executableTarget(
            name: "herald-hub",
            dependencies: [
                "HeraldHub", "Liveness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "herald-worker",
            dependencies: [
                "HeraldWorker", "Liveness",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "heraldctl",
            dependencies: [
                "HeraldProtocol", "SocketFiles",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "herald-bench",
            dependencies: [
                "HeraldClient",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SSETests", dependencies: ["SSE"]),
        // Liveness decisions (injected clock), sd_notify against a real datagram socket.
        .testTarget(
            name: "LivenessTests",
            dependencies: [
                "Liveness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The benchmark client's decoders (its figures are only as good as its counting).
        .testTarget(name: "HeraldBenchTests", dependencies: ["herald-bench"]),
        .testTarget(
            name: "HeraldProtocolTests",
            dependencies: [
                "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HeraldHubTests",
            dependencies: [
                "HeraldHub", "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                // HubCore on EmbeddedChannel; the simulated disk's lock.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "HeraldWorkerTests",
            dependencies: [
                "HeraldWorker", "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                // The stream phase on EmbeddedChannel: exact bytes, no sockets.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(
            name: "LiveTests",
            dependencies: [
                "SSE", "HeraldProtocol", "HeraldClient", "SocketFiles",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // Signs the subscriber tokens the private-channel tests present.
                .product(name: "JWTKit", package: "jwt-kit"),
                // Checks the occupancy webhooks' signatures.
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
