// Posts occupancy notices to every receiver: one queue per receiver, one POST in flight, in
// order, each retried with doubling waits while the receiver fails (a 2xx answer is
// success). A queue that reaches its bound drops new notices, logged and counted. It lives
// on the hub's loop like the core.
import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1

/// One receiver's queue.
final class WebhookReceiver {
    let url: String
    var queue = CircularBuffer<(id: String, body: String)>()
    var sending = false
    var nextRetry: TimeAmount

    init(url: String, firstRetry: TimeAmount) {
        self.url = url
        self.nextRetry = firstRetry
    }
}

/// Sends notices to the configured receivers. Not thread-safe by design: owned by `loop`.
final class WebhookDispatcher {
    let loop: EventLoop
    let settings: WebhookSettings
    let logger: Logger
    private let client: HTTPClient
    private let receivers: [WebhookReceiver]
    /// Prefix of notice ids: new for each run of the hub, so ids never repeat across runs.
    private let idPrefix: String
    private var nextID: UInt64 = 1
    private(set) var delivered: UInt64 = 0
    private(set) var failedAttempts: UInt64 = 0
    private(set) var dropped: UInt64 = 0

    init(loop: EventLoop, settings: WebhookSettings, logger: Logger, client: HTTPClient = .shared) {
        self.loop = loop
        self.settings = settings
        self.logger = logger
        self.client = client
        receivers = settings.urls.map { WebhookReceiver(url: $0, firstRetry: settings.firstRetry) }
        idPrefix = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Notices waiting, over every receiver.
    var queued: Int { receivers.reduce(0) { $0 + $1.queue.count } }

    /// Queues `notice` for every receiver.
    func post(_ notice: OccupancyNotice) {
        loop.preconditionInEventLoop()
        let id = "\(idPrefix)-\(nextID)"
        nextID += 1
        let body = WebhookBody.json(notice, id: id)
        logger.info(
            "occupancy webhook queued",
            metadata: [
                "webhook.type": "\(notice.kind.rawValue)", "webhook.channel": "\(notice.channel)",
                "webhook.id": "\(id)",
            ])
        for receiver in receivers {
            guard receiver.queue.count < settings.maximumQueued else {
                dropped += 1
                logger.error(
                    "occupancy webhook dropped: the receiver's queue is full",
                    metadata: [
                        "webhook.url": "\(receiver.url)", "webhook.id": "\(id)",
                        "webhook.queued": "\(receiver.queue.count)",
                    ])
                continue
            }
            receiver.queue.append((id, body))
            if !receiver.sending { send(receiver) }
        }
    }

    private func send(_ receiver: WebhookReceiver) {
        guard let (id, body) = receiver.queue.first else {
            receiver.sending = false
            return
        }
        receiver.sending = true
        let request: HTTPClient.Request
        do {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "User-Agent", value: "herald-hub")
            headers.add(name: "X-Herald-Signature", value: WebhookBody.signature(of: body, secret: settings.secret))
            request = try HTTPClient.Request(url: receiver.url, method: .POST, headers: headers, body: .string(body))
        } catch {
            // The URL was checked at startup; should it still not parse, nothing would ever send it.
            logger.error(
                "occupancy webhook URL refused", metadata: ["webhook.url": "\(receiver.url)", "error": "\(error)"])
            receiver.queue.removeFirst()
            dropped += 1
            send(receiver)
            return
        }
        // The client runs on its own loops (a receiver's TLS handshake is no work for the hub's).
        client.execute(request: request, eventLoop: .indifferent, deadline: .now() + settings.timeout, logger: nil)
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { [self] result in
                var failure: String?
                switch result {
                case .success(let response) where (200..<300).contains(response.status.code):
                    break
                case .success(let response):
                    failure = "answered \(response.status.code)"
                case .failure(let error):
                    failure = "\(error)"
                }
                guard let failure else {
                    delivered += 1
                    receiver.queue.removeFirst()
                    receiver.nextRetry = settings.firstRetry
                    send(receiver)
                    return
                }
                failedAttempts += 1
                let wait = receiver.nextRetry
                receiver.nextRetry = min(settings.longestRetry, wait * 2)
                logger.warning(
                    "occupancy webhook failed; retrying",
                    metadata: [
                        "webhook.url": "\(receiver.url)", "webhook.id": "\(id)", "error": "\(failure)",
                        "webhook.retryMs": "\(wait.nanoseconds / 1_000_000)",
                    ])
                loop.assumeIsolated().scheduleTask(in: wait) { [self] in send(receiver) }
            }
    }
}
