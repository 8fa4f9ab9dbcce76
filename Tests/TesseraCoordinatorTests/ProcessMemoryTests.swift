import Testing

@testable import TesseraCoordinator

@Suite struct ProcessMemoryTests {
    #if canImport(Glibc)
    @Test("glibc takes the one-arena setting that tessera-coordinator starts with")
    func oneAllocatorArena() {
        // The function looks `mallopt` up by name: a wrong name or signature would return false.
        #expect(ProcessMemory.useOneAllocatorArena())
    }
    #endif

    @Test("this process's resident and peak resident sizes are read from /proc")
    func residentSizes() throws {
        let current = try #require(ProcessMemory.residentBytes())
        let peak = try #require(ProcessMemory.peakResidentBytes())
        #expect(current > 1 << 20)
        #expect(peak >= current)
    }
}
