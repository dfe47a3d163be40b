// The shared event log in PostgreSQL: its schema and every statement a hub runs on it. Ordering
// rests on one row lock: a publishing transaction locks `herald_head` first and holds it until
// COMMIT, so sequence numbers commit in the order they are assigned and a reader's
// `WHERE seq > $last ORDER BY seq` never sees a gap that a slower transaction fills later.
// Idempotency keys live in `herald_keys`, read and written under the same lock, so every hub
// of the cluster answers a repeated key with the event first published with it.
import HeraldProtocol
import Logging
import NIOCore
import PostgresNIO

/// The log's head as one read of it saw it.
struct ClusterHead: Sendable, Equatable {
    /// The cluster's epoch (`herald_meta`): every hub gives the same ids.
    var epoch: String
    /// The last sequence committed.
    var sequence: UInt64
    /// Every event up to this sequence has been pruned.
    var prunedThrough: UInt64
}

/// Everything a hub needs to start serving: the head, each channel's state as of the head, and
/// the recent events, read in one consistent snapshot.
struct ClusterSnapshot: Sendable {
    struct Channel: Sendable {
        var name: String
        var state: String
        var sequence: UInt64
    }
    var head: ClusterHead
    var channels: [Channel]
    /// The events after `lastDropped`, ascending.
    var records: [JournalRecord]
    /// Events up to here are not in `records` (pruned, or older than the history a hub keeps).
    var lastDropped: UInt64
    /// Per channel, its newest event not in `records`.
    var lastDroppedByChannel: [String: UInt64]
}

/// One publish or state replacement on its way into the log.
struct ClusterWrite: Sendable {
    /// The hub's own number for the write (to find its publisher again).
    let id: UInt64
    let change: LogChange
}

/// What became of one write of a committed batch.
enum ClusterWriteOutcome: Sendable {
    /// Its new records, consecutive (several for a publish batch), and the events not stored
    /// again because their idempotency keys were known.
    case stored([JournalRecord], repeats: [PublishRepeat])
    case refused(String)
}

/// A batch that failed; `committed` tells whether the failure came before COMMIT was sent
/// (nothing stored) or during it (the outcome is unknown).
struct ClusterWriteError: Error, CustomStringConvertible {
    var duringCommit: Bool
    var underlying: String
    var description: String {
        duringCommit
            ? "the cluster database failed while committing (\(underlying)); the event may or may not be stored"
            : "the cluster database is unavailable (\(underlying)); the event was not published"
    }
}

/// The statements on the shared log. Stateless: every call takes the connection to use.
struct ClusterLog: Sendable {
    let logger: Logger
    /// The largest state document accepted (`--max-event-bytes`).
    let maxEventBytes: Int
    /// `--idempotency-window` in seconds (0: keys are not remembered).
    var idempotencySeconds: Double = 600
    /// `--max-idempotency-keys`: rows kept in `herald_keys`; the oldest beyond it are pruned.
    var maxIdempotencyKeys: Int = 200_000
    /// The epoch of the state a transaction orders on (records carry none).
    private static let scratchEpoch = Epoch.random()
    /// The NOTIFY channel that wakes every hub after a commit.
    static let notifyChannel = "herald_events"
    /// Serialises schema creation and pruning between hubs (an arbitrary constant).
    static let advisoryLockKey: Int64 = 0x4865_7261_6C64

    // MARK: Schema

    /// Creates the tables if they are missing, and the cluster's epoch with them.
    func prepareSchema(on connection: PostgresConnection) async throws {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
            for statement in Self.schema {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            let epoch = Epoch.random().rawValue
            try await connection.query(
                "INSERT INTO herald_meta (id, epoch) VALUES (1, \(epoch)) ON CONFLICT (id) DO NOTHING", logger: logger)
            try await connection.query(
                "INSERT INTO herald_head (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING", logger: logger)
            try await connection.query("COMMIT", logger: logger)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The tables. Payloads are `bytea` so that any text (and the state's exact bytes) survive
    /// whatever encoding the database was created with.
    static let schema: [String] = [
        """
        CREATE TABLE IF NOT EXISTS herald_meta (
            id integer PRIMARY KEY CHECK (id = 1),
            epoch text NOT NULL,
            pruned_through bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE IF NOT EXISTS herald_head (
            id integer PRIMARY KEY CHECK (id = 1),
            seq bigint NOT NULL)
        """,
        """
        CREATE TABLE IF NOT EXISTS herald_events (
            seq bigint PRIMARY KEY,
            channel text NOT NULL,
            kind smallint NOT NULL,
            name text NOT NULL,
            data bytea NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        """
        CREATE TABLE IF NOT EXISTS herald_channels (
            name text PRIMARY KEY,
            state bytea NOT NULL,
            seq bigint NOT NULL,
            pruned_seq bigint NOT NULL DEFAULT 0)
        """,
        """
        CREATE TABLE IF NOT EXISTS herald_keys (
            key text PRIMARY KEY,
            seq bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())
        """,
        "CREATE INDEX IF NOT EXISTS herald_keys_created ON herald_keys (created_at)",
        // Presence: each hub's subscriber counts, refreshed every second (ClusterPresence).
        """
        CREATE TABLE IF NOT EXISTS herald_presence (
            hub text PRIMARY KEY,
            counts jsonb NOT NULL,
            refreshed_at timestamptz NOT NULL DEFAULT now())
        """,
        // Channels the cluster's occupancy webhooks have told occupied (and not vacated).
        "CREATE TABLE IF NOT EXISTS herald_occupied (channel text PRIMARY KEY)",
    ]

    // MARK: Reading

    /// The epoch, the last committed sequence and the prune point.
    func head(on connection: PostgresConnection) async throws -> ClusterHead {
        let rows = try await connection.query(
            "SELECT m.epoch, h.seq, m.pruned_through FROM herald_head h CROSS JOIN herald_meta m", logger: logger)
        for try await (epoch, sequence, pruned) in rows.decode((String, Int64, Int64).self) {
            return ClusterHead(epoch: epoch, sequence: UInt64(sequence), prunedThrough: UInt64(pruned))
        }
        throw ClusterSchemaError()
    }

    /// Up to `limit` events after `sequence`, ascending. Committed rows form a prefix without
    /// gaps (see the file comment); a first row past `sequence + 1` means the rest was pruned.
    func records(after sequence: UInt64, limit: Int, on connection: PostgresConnection) async throws -> [JournalRecord]
    {
        let rows = try await connection.query(
            """
            SELECT seq, kind, channel, name, data FROM herald_events
            WHERE seq > \(Int64(sequence)) ORDER BY seq LIMIT \(Int64(limit))
            """, logger: logger)
        return try await Self.decodeRecords(rows)
    }

    /// The head, every channel's state and the newest `historyEvents` events, all as of one
    /// instant (a repeatable-read transaction).
    func snapshot(historyEvents: Int, on connection: PostgresConnection) async throws -> ClusterSnapshot {
        try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
        do {
            let head = try await self.head(on: connection)
            var channels: [ClusterSnapshot.Channel] = []
            var droppedByChannel: [String: UInt64] = [:]
            let channelRows = try await connection.query(
                "SELECT name, state, seq, pruned_seq FROM herald_channels", logger: logger)
            for try await (name, state, sequence, pruned) in channelRows.decode((String, ByteBuffer, Int64, Int64).self)
            {
                channels.append(.init(name: name, state: String(buffer: state), sequence: UInt64(sequence)))
                if pruned > 0 { droppedByChannel[name] = UInt64(pruned) }
            }
            // Older events than the history kept in memory count as dropped, per channel exactly.
            let window = max(
                head.prunedThrough, head.sequence > UInt64(historyEvents) ? head.sequence - UInt64(historyEvents) : 0)
            if window > head.prunedThrough {
                let older = try await connection.query(
                    "SELECT channel, max(seq) FROM herald_events WHERE seq <= \(Int64(window)) GROUP BY channel",
                    logger: logger)
                for try await (name, sequence) in older.decode((String, Int64).self) {
                    droppedByChannel[name] = max(droppedByChannel[name] ?? 0, UInt64(sequence))
                }
            }
            let rows = try await connection.query(
                """
                SELECT seq, kind, channel, name, data FROM herald_events
                WHERE seq > \(Int64(window)) ORDER BY seq
                """, logger: logger)
            let records = try await Self.decodeRecords(rows)
            try await connection.query("COMMIT", logger: logger)
            return ClusterSnapshot(
                head: head, channels: channels, records: records, lastDropped: window,
                lastDroppedByChannel: droppedByChannel)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    private static func decodeRecords(_ rows: PostgresRowSequence) async throws -> [JournalRecord] {
        var records: [JournalRecord] = []
        for try await (sequence, kind, channel, name, data) in rows.decode(
            (Int64, Int16, String, String, ByteBuffer).self)
        {
            records.append(
                JournalRecord(
                    kind: RecordKind(rawValue: UInt8(truncatingIfNeeded: kind)) ?? .message,
                    event: HubEvent(
                        sequence: UInt64(sequence), channel: channel, name: name, data: String(buffer: data))
                ))
        }
        return records
    }

    // MARK: Writing

    /// Orders `writes` after every committed event, applies merges and replacements to the
    /// channels' states, stores it all and commits; every hub is notified at COMMIT.
    func append(_ writes: [ClusterWrite], on connection: PostgresConnection) async throws(ClusterWriteError)
        -> [ClusterWriteOutcome]
    {
        var sentCommit = false
        do {
            try await connection.query("BEGIN", logger: logger)
            // The row lock that serialises publishers, held until COMMIT. Statements after it
            // take a new snapshot, so they see what the previous holder committed.
            var head: UInt64 = 0
            let headRows = try await connection.query(
                "SELECT seq FROM herald_head WHERE id = 1 FOR UPDATE", logger: logger)
            for try await sequence in headRows.decode(Int64.self) { head = UInt64(sequence) }
            let names = Array(Set(writes.flatMap(\.change.channels)))
            // The changes are ordered by the same pure step as on one machine, after a state
            // made of what the database holds: the channels they touch, the keys they carry.
            let now = IdempotencyWindow.now()
            var state = HubState(
                epoch: Self.scratchEpoch, history: HistoryRing(maximumEvents: 0, maximumBytes: 0),
                maxEventBytes: maxEventBytes,
                keys: IdempotencyWindow(
                    windowMilliseconds: UInt64(max(0, idempotencySeconds * 1000)), maximumKeys: .max, maximumBytes: .max
                ))
            state.sequence = head
            let stateRows = try await connection.query(
                "SELECT name, state FROM herald_channels WHERE name = ANY(\(names))", logger: logger)
            for try await (name, text) in stateRows.decode((String, ByteBuffer).self) {
                state.channels[name] = ChannelState(
                    state: (try? JSONValue(parsing: String(buffer: text))) ?? .object(JSONObject()))
            }
            // Keys committed within the window (by any hub).
            let keys = writes.flatMap { write -> [String] in
                guard case .publish(let requests) = write.change else { return [] }
                return requests.compactMap(\.key)
            }
            if !keys.isEmpty, idempotencySeconds > 0 {
                let keyRows = try await connection.query(
                    """
                    SELECT key, seq FROM herald_keys WHERE key = ANY(\(keys))
                    AND created_at > now() - make_interval(secs => \(idempotencySeconds))
                    """, logger: logger)
                for try await (key, sequence) in keyRows.decode((String, Int64).self) {
                    state.keys.insert(IdempotencyEntry(key: key, sequence: UInt64(sequence), acceptedAt: now))
                }
            }
            var outcomes: [ClusterWriteOutcome] = []
            var records: [JournalRecord] = []
            for write in writes {
                switch write.change.prepare(after: state, now: now) {
                case .failure(let refusal):
                    outcomes.append(.refused(refusal.message))
                case .success(let prepared):
                    for (record, newState) in prepared.records { state.apply(record, newState: newState) }
                    records.append(contentsOf: prepared.records.map(\.0))
                    outcomes.append(.stored(prepared.records.map(\.0), repeats: prepared.repeats))
                }
            }
            let newKeys = idempotencySeconds > 0 ? records.filter { $0.key != nil } : []
            guard !records.isEmpty else {
                try await connection.query("ROLLBACK", logger: logger)
                return outcomes
            }
            var lastOfChannel: [String: UInt64] = [:]
            for record in records { lastOfChannel[record.event.channel] = record.event.sequence }
            let channelNames = Array(lastOfChannel.keys)
            let channelStates = channelNames.map {
                ByteBuffer(string: (state.channels[$0]?.state ?? .object(JSONObject())).serialized)
            }
            let channelSequences = channelNames.map { Int64(lastOfChannel[$0]!) }
            let last = Int64(state.sequence)
            try await connection.query(
                """
                WITH events AS (
                    INSERT INTO herald_events (seq, kind, channel, name, data)
                    SELECT * FROM unnest(\(records.map { Int64($0.event.sequence) })::int8[],
                        \(records.map { Int16($0.kind.rawValue) })::int2[], \(records.map(\.event.channel))::text[],
                        \(records.map(\.event.name))::text[], \(records.map { ByteBuffer(string: $0.event.data) })::bytea[])),
                channels AS (
                    INSERT INTO herald_channels (name, state, seq)
                    SELECT * FROM unnest(\(channelNames)::text[], \(channelStates)::bytea[], \(channelSequences)::int8[])
                    ON CONFLICT (name) DO UPDATE SET state = EXCLUDED.state, seq = EXCLUDED.seq),
                keys AS (
                    INSERT INTO herald_keys (key, seq)
                    SELECT * FROM unnest(\(newKeys.map { $0.key! })::text[], \(newKeys.map { Int64($0.event.sequence) })::int8[])
                    ON CONFLICT (key) DO UPDATE SET seq = EXCLUDED.seq, created_at = now()),
                head AS (UPDATE herald_head SET seq = \(last) WHERE id = 1)
                SELECT pg_notify(\(Self.notifyChannel), \(String(last)))
                """, logger: logger)
            sentCommit = true
            try await connection.query("COMMIT", logger: logger)
            return outcomes
        } catch {
            if !sentCommit { _ = try? await connection.query("ROLLBACK", logger: logger) }
            throw ClusterWriteError(duringCommit: sentCommit, underlying: Self.describe(error))
        }
    }

    // MARK: Retention

    /// Deletes the events beyond `retainEvents` or older than `retainSeconds`, remembering per
    /// channel the newest one deleted (so resume stays exact). One hub at a time does it;
    /// returns the new prune point, or nil when nothing was pruned.
    func prune(retainEvents: Int, retainSeconds: Int, on connection: PostgresConnection) async throws -> UInt64? {
        guard retainEvents > 0 || retainSeconds > 0 else { return nil }
        try await connection.query("BEGIN", logger: logger)
        do {
            var locked = false
            let lockRows = try await connection.query(
                "SELECT pg_try_advisory_xact_lock(\(Self.advisoryLockKey))", logger: logger)
            for try await value in lockRows.decode(Bool.self) { locked = value }
            let head = try await self.head(on: connection)
            var cut: UInt64 = 0
            if retainEvents > 0, head.sequence > UInt64(retainEvents) { cut = head.sequence - UInt64(retainEvents) }
            if locked, retainSeconds > 0 {
                let rows = try await connection.query(
                    """
                    SELECT COALESCE(max(seq), 0) FROM herald_events
                    WHERE created_at < now() - make_interval(secs => \(Double(retainSeconds)))
                    """, logger: logger)
                for try await sequence in rows.decode(Int64.self) { cut = max(cut, UInt64(sequence)) }
            }
            if locked {
                try await pruneKeys(on: connection)
            }
            guard locked, cut > head.prunedThrough else {
                try await connection.query("COMMIT", logger: logger)
                return nil
            }
            try await connection.query(
                """
                WITH gone AS (DELETE FROM herald_events WHERE seq <= \(Int64(cut)) RETURNING channel, seq),
                newest AS (SELECT channel, max(seq) AS seq FROM gone GROUP BY channel)
                UPDATE herald_channels c SET pruned_seq = newest.seq FROM newest
                WHERE c.name = newest.channel AND c.pruned_seq < newest.seq
                """, logger: logger)
            try await connection.query(
                "UPDATE herald_meta SET pruned_through = \(Int64(cut)) WHERE id = 1 AND pruned_through < \(Int64(cut))",
                logger: logger)
            try await connection.query("COMMIT", logger: logger)
            return cut
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// Deletes the idempotency keys whose window ended, and the oldest beyond `maxIdempotencyKeys`.
    private func pruneKeys(on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM herald_keys WHERE created_at <= now() - make_interval(secs => \(idempotencySeconds))",
            logger: logger)
        try await connection.query(
            """
            DELETE FROM herald_keys WHERE key IN (
                SELECT key FROM herald_keys ORDER BY created_at DESC, seq DESC OFFSET \(Int64(maxIdempotencyKeys)))
            """, logger: logger)
    }

    /// A database error in one line (PSQLError's own description hides the server's message).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// The cluster tables are missing their first rows.
struct ClusterSchemaError: Error, CustomStringConvertible {
    var description: String { "the cluster database has no herald_meta/herald_head row" }
}
