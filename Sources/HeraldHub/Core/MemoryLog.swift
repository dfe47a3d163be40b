// The log of a hub without `--data-dir`: it orders changes on the hub and keeps nothing, so
// every written record is visible and acknowledged at once (and lost when the hub stops).
import HeraldProtocol
import NIOCore

/// Events in memory only.
final class MemoryLog: EventLog {
    weak var delegate: (any EventLogDelegate)?
    let visibleThrough = UInt64.max
    let durableThrough = UInt64.max

    func append(
        _ change: LogChange, order: () -> Result<PreparedPublish, PublishRefusal>,
        completion: @escaping (LogAppendOutcome) -> Void
    ) {
        switch order() {
        case .failure(let refusal): completion(.notWritten(.refused(refusal.message)))
        case .success(let prepared): completion(.written(prepared))
        }
    }

    func released(through visible: UInt64, state: HubState, pending: CircularBuffer<WrittenEvent>) {}
    func waitUntilRead(_ sequence: UInt64, visible: UInt64) -> EventLoopFuture<Void>? { nil }
    func close() {}
    func addStats(to stats: inout HubStats, visible: UInt64) {}
}
