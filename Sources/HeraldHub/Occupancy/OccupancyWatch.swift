// When a channel becomes occupied or vacated, from its subscriber counts over time: occupied
// at its first subscriber, vacated once it has had none for the vacate delay (a reconnect
// inside that window is no transition at all). Pure: the caller brings the clock.

/// One transition of a channel, as a webhook tells it.
struct OccupancyNotice: Equatable, Sendable {
    enum Kind: String, Sendable {
        case occupied = "channel.occupied"
        case vacated = "channel.vacated"
    }

    var kind: Kind
    var channel: String
    /// The channel's subscribers when it happened (0 for `vacated`).
    var subscribers: Int
    /// When it happened, in milliseconds since 1970 (UTC).
    var timeMilliseconds: Int64
}

/// The occupancy of every channel as told so far.
struct OccupancyWatch {
    /// How long a channel must stay without subscribers before it is vacated.
    let vacatedAfterMilliseconds: Int64
    /// Channels told occupied (and not yet told vacated).
    private(set) var occupied: Set<String> = []
    /// Occupied channels that have no subscribers now, and since when.
    private var emptySince: [String: Int64] = [:]

    init(vacatedAfterMilliseconds: Int64, occupied: Set<String> = []) {
        self.vacatedAfterMilliseconds = vacatedAfterMilliseconds
        self.occupied = occupied
    }

    /// `channel` has `subscribers` now: an `occupied` notice when it is newly occupied.
    mutating func update(channel: String, subscribers: Int, now: Int64) -> OccupancyNotice? {
        if subscribers > 0 {
            if emptySince.removeValue(forKey: channel) != nil { return nil }
            guard occupied.insert(channel).inserted else { return nil }
            return OccupancyNotice(kind: .occupied, channel: channel, subscribers: subscribers, timeMilliseconds: now)
        }
        if occupied.contains(channel), emptySince[channel] == nil { emptySince[channel] = now }
        return nil
    }

    /// Every channel's count at once (cluster mode reads them so): the notices for channels
    /// that became occupied; channels missing from `totals` have no subscribers.
    mutating func apply(totals: [String: Int], now: Int64) -> [OccupancyNotice] {
        var notices: [OccupancyNotice] = []
        for channel in totals.keys.sorted() {
            if let notice = update(channel: channel, subscribers: totals[channel]!, now: now) { notices.append(notice) }
        }
        for channel in occupied.sorted() where (totals[channel] ?? 0) == 0 {
            _ = update(channel: channel, subscribers: 0, now: now)
        }
        return notices
    }

    /// The `vacated` notices whose delay has passed by `now`, oldest first.
    mutating func due(now: Int64) -> [OccupancyNotice] {
        let ready = emptySince.filter { now - $0.value >= vacatedAfterMilliseconds }
            .sorted { ($0.value, $0.key) < ($1.value, $1.key) }
        return ready.map { channel, since in
            emptySince[channel] = nil
            occupied.remove(channel)
            return OccupancyNotice(
                kind: .vacated, channel: channel, subscribers: 0, timeMilliseconds: since + vacatedAfterMilliseconds)
        }
    }

    /// When the next `vacated` notice falls due, if any waits.
    var nextDue: Int64? { emptySince.values.min().map { $0 + vacatedAfterMilliseconds } }
}
