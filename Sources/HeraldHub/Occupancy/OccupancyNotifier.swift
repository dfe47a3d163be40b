// Turns subscriber counts into occupancy webhooks: the watch decides the transitions, a
// timer fires the vacate delays, the dispatcher posts. Fed by the hub core's presence on one
// machine, and by the cluster's counts on the hub that leads the cluster's webhooks.
import HeraldProtocol
import Logging
import NIOCore

/// The occupancy webhooks of one hub. Not thread-safe by design: owned by `loop`.
final class OccupancyNotifier {
    let loop: EventLoop
    let dispatcher: WebhookDispatcher
    private var watch: OccupancyWatch
    private var timer: Scheduled<Void>?
    private var timerDue: Int64?

    init(loop: EventLoop, settings: WebhookSettings, logger: Logger) {
        self.loop = loop
        dispatcher = WebhookDispatcher(loop: loop, settings: settings, logger: logger)
        watch = OccupancyWatch(vacatedAfterMilliseconds: settings.vacatedAfter.nanoseconds / 1_000_000)
    }

    /// Channels told occupied and not yet vacated.
    var occupied: Set<String> { watch.occupied }

    /// Some channels' totals changed (one machine).
    func changed(_ changes: [PresenceTable.Change]) {
        let now = Int64(IdempotencyWindow.now())
        for change in changes {
            if let notice = watch.update(channel: change.channel, subscribers: change.after, now: now) { send(notice) }
        }
        armTimer()
    }

    /// Every channel's total, as the cluster's counts say now.
    func apply(totals: [String: Int]) {
        for notice in watch.apply(totals: totals, now: Int64(IdempotencyWindow.now())) { send(notice) }
        armTimer()
    }

    /// Cluster mode, on becoming the hub that sends the webhooks: starts from what the
    /// cluster has told so far.
    func start(occupied: Set<String>) {
        stop()
        watch = OccupancyWatch(vacatedAfterMilliseconds: watch.vacatedAfterMilliseconds, occupied: occupied)
    }

    /// Cluster mode, on losing the lead (the database went away): decides nothing more, so
    /// that the next leader alone sends what follows. Queued notices are still sent.
    func stop() {
        timer?.cancel()
        timer = nil
        timerDue = nil
        watch = OccupancyWatch(vacatedAfterMilliseconds: watch.vacatedAfterMilliseconds)
    }

    private func send(_ notice: OccupancyNotice) {
        dispatcher.post(notice)
    }

    private func armTimer() {
        guard let due = watch.nextDue else {
            timer?.cancel()
            timer = nil
            timerDue = nil
            return
        }
        guard timerDue != due else { return }
        timer?.cancel()
        timerDue = due
        let wait = max(0, due - Int64(IdempotencyWindow.now()))
        timer = loop.assumeIsolated().scheduleTask(in: .milliseconds(wait)) { [self] in
            timer = nil
            timerDue = nil
            for notice in watch.due(now: Int64(IdempotencyWindow.now())) { send(notice) }
            armTimer()
        }
    }
}
