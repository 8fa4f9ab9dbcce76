import ArgumentParser
import Foundation
import TesseraPrivacy

/// `tessera privacy …`: the Rényi-DP accountant from the command line, for planning a run.
struct Privacy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Differential privacy: the ε a configuration spends, or the noise a budget needs.",
        discussion: """
            Sites join each round independently with probability --sampling-rate (Poisson sampling); \
            the noise multiplier is the noise's standard deviation over the clip norm. The accountant \
            composes the rounds in Rényi DP (the subsampled Gaussian of Mironov, Talwar and Zhang 2019) \
            over the orders 1.1…10.9, 12…63, 128 and 256, and converts to (ε, δ) as Opacus does \
            (Balle et al. 2020).
            """,
        subcommands: [Epsilon.self, Noise.self])

    /// The mechanisms the command accounts for; distributed DP's Skellam is accounted inside experiments.
    enum Mechanism: String, ExpressibleByArgument, CaseIterable {
        case gaussian
    }

    /// Options both subcommands share, checked before anything is computed.
    struct Schedule: ParsableArguments {
        @Option(help: "Probability that a site takes part in a round, in (0, 1].") var samplingRate: Double
        @Option(help: "Rounds the run composes.") var rounds: Int
        @Option(help: "δ of the (ε, δ) guarantee, in (0, 1); 1e-5 is usual.") var delta: Double

        func validate() throws {
            guard samplingRate.isFinite, samplingRate > 0, samplingRate <= 1 else {
                throw ValidationError("--sampling-rate must be in (0, 1], got \(samplingRate)")
            }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1, got \(rounds)") }
            guard delta.isFinite, delta > 0, delta < 1 else {
                throw ValidationError("--delta must be in (0, 1), got \(delta)")
            }
        }
    }

    struct Epsilon: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the ε that ROUNDS rounds spend, and the order that gives it.")

        @Option(help: "Noise standard deviation over the clip norm (L2 sensitivity).") var noiseMultiplier: Double
        @OptionGroup var schedule: Schedule
        @Option(help: "The noise mechanism: \(Mechanism.allCases.map(\.rawValue).joined(separator: ", ")).")
        var mechanism: Mechanism = .gaussian
        @Flag(help: "Also print every order: its RDP after all rounds and the ε it alone would give.")
        var orders = false

        func validate() throws {
            guard noiseMultiplier.isFinite, noiseMultiplier > 0 else {
                throw ValidationError("--noise-multiplier must be a positive number, got \(noiseMultiplier)")
            }
        }

        func run() {
            let noise: PrivacyMechanism =
                switch mechanism {
                case .gaussian: .gaussian(noiseMultiplier: noiseMultiplier)
                }
            let accountant = PrivacyAccountant().composing(
                noise, samplingRate: schedule.samplingRate, steps: schedule.rounds)
            let spent = accountant.spent(delta: schedule.delta)
            print("\(noise), sampling rate \(schedule.samplingRate), \(schedule.rounds) rounds")
            print(
                String(format: "ε = %.4f at δ = %g", spent.epsilon, schedule.delta)
                    + " (best order \(order(spent.order)))")
            guard orders else { return }
            print("")
            print("   order            RDP              ε")
            for (alpha, rdp) in zip(accountant.orders, accountant.rdp) {
                let single = RDPConversion.epsilon(orders: [alpha], rdp: [rdp], delta: schedule.delta).epsilon
                let mark = alpha == spent.order ? "  ← best" : ""
                let padded = String(repeating: " ", count: max(0, 8 - order(alpha).count)) + order(alpha)
                print(padded + String(format: " %14.6g %14.6g", rdp, single) + mark)
            }
        }
    }

    struct Noise: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the smallest Gaussian noise multiplier that keeps ROUNDS rounds within ε.")

        @Option(help: "The ε budget for the whole run.") var epsilon: Double
        @OptionGroup var schedule: Schedule

        func validate() throws {
            guard epsilon.isFinite, epsilon > 0 else {
                throw ValidationError("--epsilon must be a positive number, got \(epsilon)")
            }
        }

        func run() throws {
            let found: Double
            do throws(PrivacyError) {
                found = try NoiseCalibration.noiseMultiplier(
                    targetEpsilon: epsilon, delta: schedule.delta, samplingRate: schedule.samplingRate,
                    rounds: schedule.rounds)
            } catch {
                throw CommandError(error.message)
            }
            // Printed to four decimals, rounded up so that the value shown still meets the budget.
            let z = (found * 1e4).rounded(.up) / 1e4
            let spent = PrivacyAccountant()
                .composing(.gaussian(noiseMultiplier: z), samplingRate: schedule.samplingRate, steps: schedule.rounds)
                .spent(delta: schedule.delta)
            print(String(format: "noise multiplier %.4f", z))
            print(
                String(
                    format: "reaches ε = %.4f at δ = %g over %d rounds at sampling rate %g", spent.epsilon,
                    schedule.delta, schedule.rounds, schedule.samplingRate) + " (best order \(order(spent.order)))")
        }
    }
}

/// An order as the grid writes it: 4.7, 12, 256.
private func order(_ alpha: Double) -> String {
    alpha == alpha.rounded() ? String(Int(alpha)) : String(format: "%.1f", alpha)
}
