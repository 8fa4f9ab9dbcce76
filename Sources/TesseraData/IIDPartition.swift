import TesseraTensor

extension Partitioner {
    /// The IID control: a seeded shuffle dealt into `clients` parts whose sizes differ by at
    /// most one (the first `N mod clients` clients get the extra sample).
    public static func iid(_ dataset: Dataset, clients: Int, seed: UInt64) throws -> Partition {
        try checkClients(clients, minimum: 1, dataset: dataset, scheme: .iid)
        var order = Array(0..<dataset.count)
        var rng = TesseraRandom(seed: seed)
        rng.shuffle(&order)
        let base = dataset.count / clients
        let extra = dataset.count % clients
        var lists: [[Int]] = []
        var start = 0
        for client in 0..<clients {
            let size = base + (client < extra ? 1 : 0)
            lists.append(Array(order[start..<start + size]))
            start += size
        }
        return finish(lists, scheme: .iid, dataset: dataset)
    }
}
