// The worker's settings are checked in one place, WorkerConfiguration.problem: the defaults
// pass, the edges of every range pass, and each bound just outside names the flag to change.
import NIOCore
import Testing

@testable import HeraldWorker

/// The defaults with the field behind `flag` just outside its range.
private func breaking(_ flag: String) -> WorkerConfiguration {
    var c = WorkerConfiguration()
    switch flag {
    case "--heartbeat": c.heartbeatInterval = .milliseconds(500)
    case "--poll-timeout": c.pollTimeout = .seconds(3601)
    case "--receive-timeout": c.receiveTimeout = .seconds(0)
    case "--retry": c.retryMilliseconds = -1
    case "--max-body": c.maxBodyBytes = 0
    case "--max-batch-bytes": c.maxBatchBytes = 0
    case "--max-batch-events": c.maxBatchEvents = 100_001
    case "--max-publishes-in-flight": c.maxPublishesInFlight = 0
    case "--max-queued-bytes": c.maxQueuedBytes = 4095
    case "--max-channels-per-stream": c.maxChannelsPerStream = 0
    case "--event-loops": c.eventLoops = 65
    case "--accept-threads": c.acceptThreads = 0
    case "HERALD_PUBLISH_TOKEN": c.publishToken = "short"
    default: Issue.record("no such flag \(flag)")
    }
    return c
}

@Suite struct WorkerConfigurationTests {
    @Test func theDefaultsPass() {
        #expect(WorkerConfiguration().problem == nil)
    }

    @Test(arguments: [
        "--heartbeat", "--poll-timeout", "--receive-timeout", "--retry", "--max-body", "--max-batch-bytes",
        "--max-batch-events", "--max-publishes-in-flight", "--max-queued-bytes", "--max-channels-per-stream",
        "--event-loops", "--accept-threads", "HERALD_PUBLISH_TOKEN",
    ])
    func eachBoundNamesItsFlag(flag: String) {
        let problem = breaking(flag).problem
        #expect(problem?.hasPrefix(flag + " ") == true, "\(problem ?? "no problem")")
    }

    @Test func theEdgesOfEachRangePass() {
        var configuration = WorkerConfiguration()
        configuration.heartbeatInterval = .seconds(1)
        configuration.pollTimeout = .seconds(3600)
        configuration.receiveTimeout = .seconds(1)
        configuration.retryMilliseconds = 0
        configuration.maxBatchEvents = 100_000
        configuration.maxQueuedBytes = 4096
        configuration.maxChannelsPerStream = 1024
        configuration.eventLoops = 64
        configuration.acceptThreads = 1
        configuration.publishToken = String(repeating: "k", count: WorkerConfiguration.minimumPublishTokenLength)
        #expect(configuration.problem == nil)
    }
}
