public import Foundation
public import TesseraPrivacy
import TesseraSupport

/// A site's own account of the privacy it has spent, per experiment: every round it trained in
/// is charged here, from the parameters it enforced itself, before its update leaves.
///
/// The ledger charges each round at sampling rate 1: the coordinator knows whom it selected,
/// so amplification by sampling protects a site from the published models' readers but not
/// from the coordinator. It never trusts the experiment's own ε figure.
public final class PrivacyLedger: @unchecked Sendable {
    private let store: any PrivacyLedgerStore
    private let lock = NSLock()
    private var accounts: [String: PrivacyAccountant]

    /// Loads the ledger from `store`; an unreadable ledger is an error (a site that cannot read
    /// what it spent must not start again from zero).
    public init(store: any PrivacyLedgerStore) throws {
        self.store = store
        self.accounts = try store.load()
    }

    /// An empty ledger kept in memory (simulations and tests).
    public init() {
        self.store = InMemoryPrivacyLedgerStore()
        self.accounts = [:]
    }

    /// What `experiment` has charged so far.
    public func accountant(for experiment: String) -> PrivacyAccountant {
        lock.withLock { accounts[experiment] ?? PrivacyAccountant() }
    }

    /// Every experiment's account.
    public var experiments: [String: PrivacyAccountant] { lock.withLock { accounts } }

    /// What each experiment has spent at `delta`, in experiment order (for logs).
    public func spent(delta: Double) -> [(experiment: String, epsilon: Double, rounds: Int)] {
        experiments.sorted { $0.key < $1.key }.map { ($0.key, $0.value.epsilon(delta: delta), $0.value.steps) }
    }

    /// Charges one round of `mechanism` to `experiment` and saves the ledger durably; on a
    /// failed save the charge is undone and the error thrown, so the update is not sent.
    public func charge(_ mechanism: PrivacyMechanism, to experiment: String) throws {
        try lock.withLock {
            let before = accounts[experiment]
            accounts[experiment] = (before ?? PrivacyAccountant()).composing(mechanism, samplingRate: 1)
            do {
                try store.save(accounts)
            } catch {
                accounts[experiment] = before
                throw error
            }
        }
    }
}

/// Where a site's ledger lives.
public protocol PrivacyLedgerStore: Sendable {
    func load() throws -> [String: PrivacyAccountant]
    func save(_ accounts: [String: PrivacyAccountant]) throws
}

/// A ledger that lasts as long as the process (simulations and tests).
public final class InMemoryPrivacyLedgerStore: PrivacyLedgerStore, @unchecked Sendable {
    private let lock = NSLock()
    private var saved: [String: PrivacyAccountant] = [:]

    public init() {}

    public func load() throws -> [String: PrivacyAccountant] { lock.withLock { saved } }

    public func save(_ accounts: [String: PrivacyAccountant]) throws { lock.withLock { saved = accounts } }
}

/// A ledger in one JSON file, replaced durably (temporary file, fsync, rename, fsync of the
/// folder) on every charge, so a crash leaves the old or the new ledger, never a torn one.
public struct FilePrivacyLedgerStore: PrivacyLedgerStore {
    public let url: URL

    public init(url: URL) { self.url = url }

    struct File: Codable {
        var version = 1
        var experiments: [String: PrivacyAccountant]
    }

    public func load() throws -> [String: PrivacyAccountant] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw PrivacyLedgerError("cannot read the privacy ledger \(url.path): \(error.localizedDescription)")
        }
        do {
            let file = try JSONDecoder().decode(File.self, from: data)
            guard file.version == 1 else {
                throw PrivacyLedgerError(
                    "the privacy ledger \(url.path) has version \(file.version); this site reads 1")
            }
            return file.experiments
        } catch let error as PrivacyLedgerError {
            throw error
        } catch {
            throw PrivacyLedgerError(
                "the privacy ledger \(url.path) is not a ledger this site wrote (\(error)); restore it from a backup — "
                    + "the site will not start again from zero")
        }
    }

    public func save(_ accounts: [String: PrivacyAccountant]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let bytes = try encoder.encode(File(experiments: accounts))
        try DurableFile.write(bytes, to: url, permissions: 0o600)
    }
}

/// The privacy ledger cannot be read or written.
public struct PrivacyLedgerError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}
