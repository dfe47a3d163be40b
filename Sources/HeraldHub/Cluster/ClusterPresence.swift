// Cluster mode's presence: every `presenceInterval` each hub writes its own subscriber counts
// to `herald_presence` (that write is its heartbeat) and reads the other hubs' fresh ones, so
// `channels` and `GET /channels/<channel>` count the whole cluster; a hub that stops
// refreshing drops out after `presenceExpiry`. One hub at a time leads the occupancy webhooks:
// the one holding a session-level advisory lock. It decides transitions from the cluster's
// totals and records what it told in `herald_occupied`, where a new leader takes over from.
import HeraldProtocol
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Shares this hub's presence with the cluster and, when leading, sends its webhooks.
struct ClusterPresence: Service {
    let core: NIOLoopBound<HubCore>
    let loop: EventLoop
    let settings: ClusterSettings
    let logger: Logger
    /// This hub's row in `herald_presence`: new for every run.
    let hubID = "\(String(UInt64.random(in: 0...UInt64.max), radix: 36))-\(getpid())"

    /// The lock whose holder sends the cluster's webhooks (another constant than the schema's).
    static let leaderLockKey: Int64 = ClusterLog.advisoryLockKey + 1

    func run() async throws {
        var backoff = TimeAmount.milliseconds(100)
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let open = try await settings.connect(role: "presence", id: 3, on: loop, logger: logger)
                connection = open
                backoff = .milliseconds(100)
                try await serve(open)
            } catch {
                if !Task.isCancelled {
                    logger.warning(
                        "cluster presence: database unreachable; counting this hub's subscribers only",
                        metadata: ["error": "\(ClusterLog.describe(error))"])
                }
            }
            try? await loop.submit { [core] in
                core.value.otherHubsSubscribers = [:]
                core.value.occupancy?.stop()
                core.value.sendsWebhooks = false
            }.get()
            if let connection {
                if Task.isCancelled {
                    // A hub that stops leaves the counts at once instead of after the expiry.
                    _ = try? await connection.within(settings.timeout) {
                        try await $0.query("DELETE FROM herald_presence WHERE hub = \(hubID)", logger: logger)
                    }
                }
                _ = try? await connection.close()
            }
            if Task.isCancelled { break }
            try? await Task.sleep(nanoseconds: UInt64(backoff.nanoseconds))
            backoff = min(backoff * 2, .seconds(3))
        }
    }

    /// Refreshes, reads and (when leading) notifies every interval until the connection fails.
    private func serve(_ connection: PostgresConnection) async throws {
        let webhooks = try await loop.submit { [core] in core.value.occupancy != nil }.get()
        var leading = false
        var recorded: Set<String> = []
        var lastCleanup = NIODeadline.distantPast
        while !Task.isCancelled {
            let local = try await loop.submit { [core] in core.value.presence.totals }.get()
            let others = try await connection.within(settings.timeout) { try await exchange(local, on: $0) }
            try await loop.submit { [core] in core.value.otherHubsSubscribers = others }.get()
            if webhooks {
                if !leading, try await connection.within(settings.timeout, { try await tryToLead(on: $0) }) {
                    leading = true
                    recorded = try await connection.within(settings.timeout) { try await occupied(on: $0) }
                    logger.notice(
                        "this hub now sends the cluster's occupancy webhooks",
                        metadata: ["cluster.occupiedChannels": "\(recorded.count)"])
                    try await loop.submit { [core, recorded] in
                        core.value.occupancy?.start(occupied: recorded)
                        core.value.sendsWebhooks = true
                    }.get()
                }
                if leading {
                    let totals = local.merging(others, uniquingKeysWith: +)
                    let told = try await loop.submit { [core] in
                        core.value.occupancy?.apply(totals: totals)
                        return core.value.occupancy?.occupied ?? []
                    }.get()
                    try await connection.within(settings.timeout) { try await record(told, over: recorded, on: $0) }
                    recorded = told
                    if NIODeadline.now() - lastCleanup > .seconds(60) {
                        lastCleanup = .now()
                        try await connection.query(
                            "DELETE FROM herald_presence WHERE refreshed_at < now() - interval '1 hour'", logger: logger
                        )
                    }
                }
            }
            try await Task.sleep(nanoseconds: UInt64(settings.presenceInterval.nanoseconds))
        }
    }

    /// Writes this hub's counts and reads the sums of the other hubs' fresh ones.
    private func exchange(_ local: [String: Int], on connection: PostgresConnection) async throws -> [String: Int] {
        let json =
            "{" + local.keys.sorted().map { "\(JSONValue.quoted($0)):\(local[$0]!)" }.joined(separator: ",") + "}"
        try await connection.query(
            """
            INSERT INTO herald_presence (hub, counts, refreshed_at) VALUES (\(hubID), \(json)::jsonb, now())
            ON CONFLICT (hub) DO UPDATE SET counts = EXCLUDED.counts, refreshed_at = now()
            """, logger: logger)
        let expiry = Int64(settings.presenceExpiry.nanoseconds / 1_000_000)
        let rows = try await connection.query(
            """
            SELECT c.key, sum(c.value::bigint)::bigint FROM herald_presence p, jsonb_each_text(p.counts) c
            WHERE p.hub <> \(hubID) AND p.refreshed_at > now() - \(expiry) * interval '1 millisecond'
            GROUP BY c.key
            """, logger: logger)
        var others: [String: Int] = [:]
        for try await (channel, total) in rows.decode((String, Int64).self) where total > 0 {
            others[channel] = Int(total)
        }
        return others
    }

    private func tryToLead(on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.leaderLockKey))", logger: logger)
        for try await locked in rows.decode(Bool.self) { return locked }
        return false
    }

    /// The channels the cluster's webhooks have told occupied (and not vacated).
    private func occupied(on connection: PostgresConnection) async throws -> Set<String> {
        let rows = try await connection.query("SELECT channel FROM herald_occupied", logger: logger)
        var channels: Set<String> = []
        for try await channel in rows.decode(String.self) { channels.insert(channel) }
        return channels
    }

    /// Records the change from `before` to `now` in `herald_occupied`.
    private func record(_ now: Set<String>, over before: Set<String>, on connection: PostgresConnection) async throws {
        for channel in now.subtracting(before).sorted() {
            try await connection.query(
                "INSERT INTO herald_occupied (channel) VALUES (\(channel)) ON CONFLICT DO NOTHING", logger: logger)
        }
        for channel in before.subtracting(now).sorted() {
            try await connection.query("DELETE FROM herald_occupied WHERE channel = \(channel)", logger: logger)
        }
    }
}
