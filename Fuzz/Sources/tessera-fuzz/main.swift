import Foundation
import TesseraFuzzTargets

// One libFuzzer binary for every target, chosen by `TESSERA_FUZZ_TARGET` (one link instead
// of one per target). The build passes `-sanitize=address` and the coverage flags libFuzzer
// needs, and links libFuzzer without its `main`: SwiftPM gives every executable its own.

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

guard selectedTarget != nil else {
    let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
    FileHandle.standardError.write(Data("tessera-fuzz: set TESSERA_FUZZ_TARGET to one of: \(names)\n".utf8))
    exit(2)
}
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(
    runFuzzerDriver(&argc, &argv) { data, size in
        selectedTarget!.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    })
