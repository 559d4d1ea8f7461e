import NIOCore
import NIOPosix

/// One value for each event loop of a group, found by its loop: the one running the current
/// thread, or a given one (the executor that pins tasks to a loop, the HTTP client of a loop).
struct PerEventLoop<Value: Sendable>: Sendable {
    private let byLoop: [ObjectIdentifier: Value]

    /// No loop has a value.
    init() {
        byLoop = [:]
    }

    /// `make(loop)` for each loop of `group`.
    init(_ group: MultiThreadedEventLoopGroup, _ make: (any EventLoop) -> Value) {
        var table: [ObjectIdentifier: Value] = [:]
        for loop in group.makeIterator() {
            table[ObjectIdentifier(loop)] = make(loop)
        }
        byLoop = table
    }

    /// The value of `loop`, if it is one of the group's.
    func of(_ loop: any EventLoop) -> Value? {
        byLoop[ObjectIdentifier(loop)]
    }

    /// The value of the event loop running the current thread, if any.
    var current: Value? {
        MultiThreadedEventLoopGroup.currentEventLoop.flatMap(of)
    }

    var values: Dictionary<ObjectIdentifier, Value>.Values { byLoop.values }
}
