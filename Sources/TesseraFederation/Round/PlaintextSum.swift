/// A plaintext round's sample-weighted sum of updates, added to as each update arrives, for
/// strategies that need only the mean (``FederatedStrategy/requiresIndividualUpdates`` false):
/// the coordinator then holds one running sum however many sites take part, instead of every
/// update until the round closes, and the aggregation at the round's end is one division
/// (Benchmarks/RESULTS.md has the measurements).
///
/// The sum is a ``ReproducibleSum``, the same one ``Aggregation/weightedMean(_:)`` uses: its
/// mean does not depend on the order the updates arrived in, and it is the same to the bit as
/// aggregating all the updates at the end. A running `Double` sum would round differently for
/// each arrival order, so the same experiment and seed could publish different models.
struct PlaintextSum: Sendable {
    private var sum: ReproducibleSum?
    /// The contributors, sorted by site (the order they arrived in is not part of the result).
    private(set) var contributors: [SiteID] = []

    /// Adds `weight · delta`; `delta` is finite and as long as every other update of the round.
    mutating func add(_ delta: [Float], weight: UInt32, from site: SiteID) {
        if sum == nil { sum = ReproducibleSum(count: delta.count) }
        sum!.add(delta, weight: weight)
        contributors.insert(site, at: contributors.firstIndex { $0 > site } ?? contributors.endIndex)
    }

    /// The weighted mean of the updates added so far.
    var mean: [Float] { sum?.mean ?? [] }
}
