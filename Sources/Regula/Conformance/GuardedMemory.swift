#if canImport(Glibc)
import Glibc
#endif

/// Memory flush against an inaccessible page, so that a kernel touching one element past its block (or one
/// before it) faults at once instead of corrupting something quietly.
final class GuardedMemory {
    /// Which edge of the data touches a guard page.
    enum Edge { case end, start }

    /// The first byte of the usable data.
    let data: UnsafeMutableRawPointer
    /// An address inside a guard page: a pointer for empty blocks that must never be read.
    let guardPage: UnsafeMutableRawPointer
    private let mapping: UnsafeMutableRawPointer
    private let mappingSize: Int

    /// `bytes` of zeroed data with its `edge` against a guard page (a page before and after the data are
    /// both inaccessible).
    init(bytes: Int, edge: Edge) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let dataPages = max(1, (bytes + page - 1) / page)
        mappingSize = (dataPages + 2) * page
        guard let mapped = mmap(nil, mappingSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED
        else { fatalError("mmap of \(mappingSize) bytes failed") }
        mapping = mapped
        mprotect(mapping, page, PROT_NONE)
        mprotect(mapping + (dataPages + 1) * page, page, PROT_NONE)
        guardPage = mapping
        data = edge == .start ? mapping + page : mapping + (dataPages + 1) * page - bytes
    }

    deinit { munmap(mapping, mappingSize) }
}
