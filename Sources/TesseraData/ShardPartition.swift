import TesseraTensor

extension Partitioner {
    /// McMahan et al.'s (2017, "Communication-Efficient Learning of Deep Networks from
    /// Decentralized Data") pathological non-IID split: the samples, grouped by label, are cut
    /// into `clients · perClient` shards and each client receives `perClient` shards at random.
    ///
    /// One deliberate difference: McMahan sorts all samples by label and cuts the sorted list
    /// into equal shards, so a shard can straddle two classes and a client can end with more
    /// than k labels. Here shards are cut *within* each class, with each class given shards
    /// in proportion to its size (every present class at least one; each next shard goes to
    /// the class whose shards are currently largest), so every shard is label-pure and **no
    /// client holds more than `perClient` labels**. Shard sizes stay as equal as the class
    /// sizes allow.
    ///
    /// - Throws: `DataError.invalidArgument` unless `N ≥ clients · perClient ≥` the number of
    ///   classes present.
    public static func shards(_ dataset: Dataset, clients: Int, perClient: Int, seed: UInt64) throws -> Partition {
        let scheme = PartitionScheme.shards(perClient: perClient)
        let classCount = try requireClasses(dataset, scheme: scheme)
        try checkClients(clients, minimum: 1, dataset: dataset, scheme: scheme)
        guard perClient >= 1 else {
            throw DataError(.invalidArgument, "\(scheme): each client needs at least one shard, got \(perClient)")
        }
        let shardCount = clients * perClient
        var rng = TesseraRandom(seed: seed)
        var byClass = [[Int]](repeating: [], count: classCount)
        for (i, label) in dataset.classIndices.enumerated() { byClass[label].append(i) }
        let present = byClass.indices.filter { !byClass[$0].isEmpty }
        guard shardCount >= present.count else {
            throw DataError(
                .invalidArgument,
                "\(scheme): \(clients) clients × \(perClient) shards = \(shardCount) shards cannot cover the \(present.count) classes present with label-pure shards; give each client more shards"
            )
        }
        guard shardCount <= dataset.count else {
            throw DataError(
                .invalidArgument, "\(scheme): \(shardCount) shards are more than the \(dataset.count) samples")
        }
        var shardsOfClass = [Int](repeating: 0, count: classCount)
        for c in present { shardsOfClass[c] = 1 }
        for _ in present.count..<shardCount {
            // The class whose shards are largest (and can still be split) gets the next one.
            var best = -1
            for c in present where shardsOfClass[c] < byClass[c].count {
                if best < 0
                    || byClass[c].count * shardsOfClass[best] > byClass[best].count * shardsOfClass[c]
                {
                    best = c
                }
            }
            shardsOfClass[best] += 1
        }
        var shards: [[Int]] = []
        for c in present {
            rng.shuffle(&byClass[c])
            let sizes = apportion(byClass[c].count, weights: [Double](repeating: 1, count: shardsOfClass[c]))
            var start = 0
            for size in sizes {
                shards.append(Array(byClass[c][start..<start + size]))
                start += size
            }
        }
        rng.shuffle(&shards)
        let lists = (0..<clients).map { client in
            shards[(client * perClient)..<((client + 1) * perClient)].flatMap { $0 }
        }
        return finish(lists, scheme: scheme, dataset: dataset)
    }
}
