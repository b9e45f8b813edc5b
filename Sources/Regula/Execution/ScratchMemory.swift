/// A 64-byte aligned allocation kept between steps and grown when a step needs more (package: the
/// distributed optimizer keeps its bucket buffers in these too).
package final class ScratchMemory {
    private var memory: UnsafeMutableRawPointer?
    private var capacity = 0

    package init() {}

    deinit { memory?.deallocate() }

    /// At least `count` bytes.
    package func bytes(_ count: Int) -> UnsafeMutableRawPointer {
        if memory == nil || count > capacity {
            memory?.deallocate()
            capacity = max(count, 64)
            memory = .allocate(byteCount: capacity, alignment: 64)
        }
        return memory!
    }

    /// Room for at least `count` doubles.
    func doubles(_ count: Int) -> UnsafeMutablePointer<Double> {
        bytes(max(count, 1) * MemoryLayout<Double>.size).assumingMemoryBound(to: Double.self)
    }
}
