public import Logging
public import ServiceLifecycle
import UnixSignals

/// How both service programs run: as a `ServiceGroup` whose service ending on its own is a
/// normal exit (the experiment is over), and in which SIGTERM or SIGINT asks for a graceful stop.
public enum ProgramLifecycle {
    /// Runs `service` until it ends or a termination signal has stopped it gracefully.
    public static func run(_ service: some Service, name: String, logger: Logger) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)
                ],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
