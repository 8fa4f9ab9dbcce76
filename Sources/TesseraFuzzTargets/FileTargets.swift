import Foundation
import Synchronization
import TesseraData
import TesseraTensor

/// The files a site or a registry loads: model files (safetensors, which may come from other
/// participants or the internet) and dataset files (CSV, NPY, IDX).
enum FileTargets {
    /// Input: a safetensors file.
    static func safetensors(_ bytes: [UInt8]) -> Int {
        guard let file = try? Safetensors.decode(bytes) else { return 0 }
        fuzzExpect(Set(file.names) == Set(file.tensors.keys), "the names and the tensors of a file disagree")
        for (name, tensor) in file.tensors {
            fuzzExpect(
                tensor.shape.reduce(1, *) == tensor.count, "tensor \(name) has a shape that does not match its values")
        }
        // What Tessera reads, it writes back (as F32): the same names, shapes, bits and metadata.
        let encoded = try? Safetensors.encode(file.namedTensors, metadata: file.metadata)
        fuzzExpect(encoded != nil, "a file that decodes cannot be encoded again")
        let again = try? Safetensors.decode(encoded!)
        fuzzExpect(again?.metadata == file.metadata, "the metadata does not survive a round trip")
        for (name, tensor) in file.tensors {
            let other = again?.tensors[name]
            fuzzExpect(
                other?.shape == tensor.shape && other?.scalars.map(\.bitPattern) == tensor.scalars.map(\.bitPattern),
                "tensor \(name) does not survive a round trip")
        }
        // Loading into a model either replaces every parameter or none.
        guard let model = try? ModelPreset.logisticRegression(inputs: 4, classes: 3, seed: 1) else { return 1 }
        let before = model.parameters.map(\.bitPattern)
        do {
            try model.loadNamedParameters(file.tensors)
        } catch {
            fuzzExpect(model.parameters.map(\.bitPattern) == before, "a refused file changed the model")
        }
        return 1
    }

    /// Input: an options byte, then the CSV text.
    ///
    /// The loader streams the file in chunks; reading it in 7-byte chunks (rows split across
    /// reads, quotes and line ends cut in half) must give exactly what one read gives.
    static func csv(_ bytes: [UInt8]) -> Int {
        var input = FuzzInput(bytes)
        let setup = input.byte()
        let url = Scratch.write(input.rest(), as: "data.csv")
        defer { Scratch.remove(url) }
        let columns: [CSVOptions.ColumnSelection] = [.all, .only(["x", "y"]), .excluding(["id"]), .all]
        var options = CSVOptions(
            labelColumn: "label", task: setup & 1 == 0 ? .classification : .regression,
            classCount: setup & 2 == 0 ? nil : 3,
            classNames: setup & 0x42 == 0x40 && setup & 1 == 0 ? ["a", "b", "c"] : nil,
            columns: columns[Int(setup >> 2 & 3)],
            missingValues: setup & 0x10 == 0 ? .reject : .replace(with: -1),
            nonFiniteValues: setup & 0x20 == 0 ? .reject : .allow,
            delimiter: setup & 0x80 == 0 ? UInt8(ascii: ",") : UInt8(ascii: ";"))
        _ = try? CSVLoader.columns(in: url, delimiter: options.delimiter)
        let whole = Result { try CSVLoader.load(url, options: options) }
        options.chunkSize = 7
        let chunked = Result { try CSVLoader.load(url, options: options) }
        switch (whole, chunked) {
        case (.success(let a), .success(let b)):
            let sameValues =
                a.features.shape == b.features.shape && a.labels.shape == b.labels.shape
                && a.features.scalars.map(\.bitPattern) == b.features.scalars.map(\.bitPattern)
                && a.labels.scalars.map(\.bitPattern) == b.labels.scalars.map(\.bitPattern)
            let sameNames =
                a.classCount == b.classCount && a.classNames == b.classNames && a.featureNames == b.featureNames
            fuzzExpect(sameValues && sameNames, "the CSV loader reads differently in 7-byte chunks")
            check(a)
            return 1
        case (.failure, .failure):
            return 0
        default:
            fuzzExpect(false, "the CSV loader accepts the file in one chunk size and refuses it in another")
            return 0
        }
    }

    /// Input: an NPY file, loaded as a tensor and as a dataset of itself.
    static func npy(_ bytes: [UInt8]) -> Int {
        let url = Scratch.write(bytes, as: "array.npy")
        defer { Scratch.remove(url) }
        guard let tensor = try? NPYLoader.loadTensor(url) else { return 0 }
        fuzzExpect(tensor.shape.reduce(1, *) == tensor.count, "an NPY tensor whose shape does not match its values")
        let header = try? NPYLoader.header(of: url)
        fuzzExpect(header?.shape == tensor.shape, "the NPY header and the loaded tensor disagree on the shape")
        for task in [LabelTask.classification, .regression] {
            if let dataset = try? NPYLoader.loadDataset(features: url, labels: url, task: task) { check(dataset) }
        }
        return 1
    }

    /// Input: an IDX file, loaded as a tensor and as images labelled by itself.
    static func idx(_ bytes: [UInt8]) -> Int {
        let url = Scratch.write(bytes, as: "data.idx")
        defer { Scratch.remove(url) }
        guard let tensor = try? IDXLoader.loadTensor(url) else { return 0 }
        fuzzExpect(tensor.shape.reduce(1, *) == tensor.count, "an IDX tensor whose shape does not match its values")
        let scaled = try? IDXLoader.loadTensor(url, scaleBytesToUnit: true)
        fuzzExpect(scaled?.shape == tensor.shape, "scaling changed an IDX tensor's shape")
        if let dataset = try? IDXLoader.loadDataset(images: url, labels: url) { check(dataset) }
        return 1
    }

    /// What every loaded dataset promises its users.
    private static func check(_ dataset: Dataset) {
        fuzzExpect(
            dataset.features.shape.first == dataset.count && dataset.labels.rank == 1,
            "a dataset's features and labels disagree on the number of samples")
        if let classes = dataset.classCount {
            fuzzExpect(
                dataset.labels.scalars.allSatisfy { $0 >= 0 && $0 < Float(classes) && $0 == $0.rounded() },
                "a classification dataset holds a label outside 0..<\(classes)")
        }
    }
}

/// Scratch files for the loaders, which read paths: one per call and process, so that targets
/// may run concurrently (the replay tests do), each removed after use.
enum Scratch {
    private static let counter = Atomic<Int>(0)

    static let directory: URL = {
        let shared = URL(fileURLWithPath: "/dev/shm", isDirectory: true)
        let base =
            FileManager.default.isWritableFile(atPath: shared.path) ? shared : FileManager.default.temporaryDirectory
        let directory = base.appendingPathComponent("tessera-fuzz")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }()

    static func write(_ bytes: [UInt8], as name: String) -> URL {
        let number = counter.add(1, ordering: .relaxed).newValue
        let url = directory.appendingPathComponent("\(ProcessInfo.processInfo.processIdentifier)-\(number)-\(name)")
        do {
            try Data(bytes).write(to: url)
        } catch {
            fatalError("cannot write the fuzz scratch file \(url.path): \(error)")
        }
        return url
    }

    static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }
}
