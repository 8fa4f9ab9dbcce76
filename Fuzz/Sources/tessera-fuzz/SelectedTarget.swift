import Foundation
import TesseraFuzzTargets

/// The target named by `TESSERA_FUZZ_TARGET`, read once.
let selectedTarget: FuzzTarget? = ProcessInfo.processInfo.environment["TESSERA_FUZZ_TARGET"].flatMap(
    FuzzTarget.init(rawValue:))
