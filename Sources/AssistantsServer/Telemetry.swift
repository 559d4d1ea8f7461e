import Foundation
import Logging
import NIOHTTP1
import OTel
import ServiceLifecycle
import Tracing

/// OpenTelemetry traces through swift-otel: off unless an `OTEL_*` variable asks for them
/// (`OTEL_TRACES_EXPORTER` other than `none`, or an OTLP endpoint); then configured by the
/// standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
/// `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, …). Metrics stay with
/// Prometheus and logs with the server's own handler.
public enum Telemetry {
    /// Whether the environment asks for traces.
    public static func tracesRequested(_ environment: [String: String]) -> Bool {
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return false }
        if let exporter = environment["OTEL_TRACES_EXPORTER"], !exporter.isEmpty {
            return exporter.lowercased() != "none"
        }
        return ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].contains { !(environment[$0] ?? "").isEmpty }
    }

    /// Bootstraps the process's tracer, once per process (from `main`, never from `buildApplication`).
    /// Returns the exporter's service, to run with the application (nil: traces are off).
    public static func bootstrapTracing(logger: Logger) throws -> (any Service)? {
        guard tracesRequested(ProcessInfo.processInfo.environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "assistants-server"
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let (tracer, service) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        logger.info("traces: exported over OTLP (OTEL_* variables)")
        return service
    }
}

/// Injects the current trace context (W3C `traceparent`) into outgoing HTTP headers.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
