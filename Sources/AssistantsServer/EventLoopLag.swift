import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Watches every event loop for work that holds it: each loop runs a tick every `interval`, and
/// a tick that comes late measures how long the loop could not run anything else. The lag goes
/// to `assistants_event_loop_lag_seconds`; one past `warnAfter` is logged, so an operator sees
/// a stalled loop (and a developer a blocking call) without a profiler.
struct EventLoopLagService: Service {
    let group: any EventLoopGroup
    let logger: Logger
    var interval: TimeAmount = .milliseconds(100)
    var warnAfter: TimeAmount = .milliseconds(200)

    func run() async throws {
        var tasks: [RepeatedTask] = []
        for (index, loop) in group.makeIterator().enumerated() {
            let due = NIOLockedValueBox(NIODeadline.now() + interval)
            let interval = interval, warnAfter = warnAfter, logger = logger
            tasks.append(loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let now = NIODeadline.now()
                let lag = max(.nanoseconds(0), now - due.withLockedValue { $0 })
                due.withLockedValue { $0 = now + interval }
                AppMetrics.eventLoopLag(loop: index, nanoseconds: lag.nanoseconds)
                if lag > warnAfter {
                    logger.warning("an event loop was held", metadata: ["loop": "\(index)", "lag_ms": "\(lag.nanoseconds / 1_000_000)"])
                }
            })
        }
        try? await gracefulShutdown()
        for task in tasks { task.cancel() }
    }
}
