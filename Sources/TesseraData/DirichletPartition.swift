import TesseraTensor

extension Partitioner {
    /// Label skew: for each class, the proportions of its samples going to the clients are
    /// drawn from a symmetric Dirichlet(α) (Hsu et al. 2019, "Measuring the Effects of
    /// Non-Identical Data Distribution"; the `noniid-labeldir` scheme of NIID-Bench).
    ///
    /// α sets the strength: 0.1 leaves most clients with one or two dominant classes, 1 is a
    /// common "moderately non-IID" setting, 100 is close to IID. Client sizes vary too, as a
    /// side effect — that is part of the scheme.
    ///
    /// **Minimum size.** Small α often leaves a client empty, and an empty client cannot
    /// train. Like NIID-Bench, the whole draw is repeated (up to 100 times, from the same
    /// stream) until every client has at least `minimumPerClient` samples. If that still
    /// fails (tiny α, many clients), the remaining shortfall is repaired by moving random
    /// samples, one at a time, from the currently largest client to the smallest; this always
    /// terminates because `N ≥ clients · minimumPerClient` is required, and it changes the
    /// label mix as little as possible.
    public static func dirichlet(
        _ dataset: Dataset, clients: Int, alpha: Double, minimumPerClient: Int = 1, seed: UInt64
    ) throws -> Partition {
        let scheme = PartitionScheme.dirichlet(alpha: alpha, minimumPerClient: minimumPerClient)
        let classCount = try requireClasses(dataset, scheme: scheme)
        try checkClients(clients, minimum: minimumPerClient, dataset: dataset, scheme: scheme)
        guard alpha > 0, alpha.isFinite else {
            throw DataError(.invalidArgument, "\(scheme): alpha must be a positive number, got \(alpha)")
        }
        var rng = TesseraRandom(seed: seed)
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, label) in dataset.classIndices.enumerated() { byClass[label].append(i) }
        for c in byClass.indices { rng.shuffle(&byClass[c]) }

        var lists: [[Int]] = []
        for _ in 0..<100 {
            lists = [[Int]](repeating: [], count: clients)
            for members in byClass where !members.isEmpty {
                let shares = rng.nextDirichlet(alpha: alpha, count: clients)
                let counts = apportion(members.count, weights: shares)
                var start = 0
                for client in 0..<clients {
                    lists[client] += members[start..<start + counts[client]]
                    start += counts[client]
                }
            }
            if lists.allSatisfy({ $0.count >= minimumPerClient }) { break }
        }
        // Repair what resampling could not fix.
        while let small = lists.indices.min(by: { lists[$0].count < lists[$1].count }),
            lists[small].count < minimumPerClient
        {
            let large = lists.indices.max { lists[$0].count < lists[$1].count }!
            let pick = rng.nextInt(below: lists[large].count)
            lists[small].append(lists[large].remove(at: pick))
        }
        return finish(lists, scheme: scheme, dataset: dataset)
    }
}
