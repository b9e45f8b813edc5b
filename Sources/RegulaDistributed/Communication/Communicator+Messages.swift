/// Small messages between ranks (descriptions, outcomes, options) and the agreement every collective
/// decision rests on: every rank sends, every rank receives everything, every rank decides alike.
extension Communicator {
    /// Every rank's `values` one after another, in rank order: rank r's start at `r * values.count`.
    /// - Precondition: Every rank passes as many values, each of MPI type `element`.
    func allgather<T: BitwiseCopyable>(sameCount values: [T], _ element: Element) -> [T] {
        let total = values.count * size
        return [T](unsafeUninitializedCapacity: max(total, 1)) { buffer, initialized in
            withBytes(values) { send in allgather(send, count: values.count, into: UnsafeMutableRawPointer(buffer.baseAddress!), element) }
            initialized = total
        }
    }

    /// Every rank's `bytes`, in rank order; ranks may send different lengths.
    func allgather(bytes: [UInt8]) -> [[UInt8]] {
        let counts = allgather(sameCount: [Int64(bytes.count)], .int64).map { Int($0) }
        let displacements = Self.offsets(counts)
        var all = [UInt8](repeating: 0, count: max(1, counts.reduce(0, +)))
        withBytes(bytes) { send in
            all.withUnsafeMutableBytes { allgatherv(send, count: bytes.count, into: $0.baseAddress!, counts: counts,
                                                    displacements: displacements, .byte) }
        }
        return zip(displacements, counts).map { Array(all[$0..<($0 + $1)]) }
    }

    /// The root's `bytes` on every rank (what other ranks pass is ignored).
    func broadcast(bytes: [UInt8], from root: Int) -> [UInt8] {
        var length = Int64(rank == root ? bytes.count : 0)
        broadcast(&length, count: 1, from: root, .int64)
        var buffer = rank == root ? bytes : [UInt8](repeating: 0, count: Int(length))
        if length > 0 { buffer.withUnsafeMutableBytes { broadcast($0.baseAddress!, count: Int(length), from: root, .byte) } }
        return buffer
    }

    /// Runs `body` on this rank and tells every rank whether it succeeded everywhere: if it threw on any rank,
    /// every rank throws the lowest failing rank's error, in its words. Use it around work only some ranks
    /// could fail at (reading a file, building something), so that no rank goes on to wait for one that stopped.
    ///
    /// ```swift
    /// let data = try communicator.agreeing { try Data(contentsOf: url) }
    /// ```
    /// - Throws: ``DistributedError`` naming the rank that failed.
    public func agreeing<T>(_ body: () throws -> T) throws(DistributedError) -> T {
        let result = Result { try body() }
        var message: [UInt8] = [0]
        if case .failure(let error) = result { message = [1] + Array(String(describing: error).utf8) }
        let all = allgather(bytes: message)
        if let failing = all.firstIndex(where: { $0.first == 1 }) {
            throw DistributedError(onRank: failing, of: size, String(decoding: all[failing].dropFirst(), as: UTF8.self))
        }
        return try! result.get()
    }

    /// Refuses, on every rank alike, a job whose ranks were started with different settings: each rank sends
    /// its `settings` (name and value, in the same order on every rank) and compares them with rank 0's. Call
    /// it first, before any other collective whose shape the settings decide, so that a rank given another
    /// command line (an MPMD launch, `mpirun -np 1 A : -np 1 B`) is told so instead of waiting for a message
    /// that never comes.
    ///
    /// - Throws: ``DistributedError`` naming the first setting that differs and its value on each rank; its
    ///   ``DistributedError/rank`` is nil, since the disagreement is every rank's.
    public func agreeOnSettings(_ settings: [(name: String, value: String)]) throws(DistributedError) {
        let text = settings.map { "\($0.name)\u{1F}\($0.value)" }.joined(separator: "\u{1E}")
        let all = allgather(bytes: Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard let other = all.firstIndex(where: { $0 != all[0] }) else { return }
        let values = all.map { rankText in
            Dictionary(rankText.split(separator: "\u{1E}").map { field in
                let parts = field.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
            }, uniquingKeysWith: { first, _ in first })
        }
        let differing = settings.first { setting in values.contains { $0[setting.name] != values[0][setting.name] } }
        let name = differing?.name ?? "the settings"
        let perRank = values.enumerated().map { "\($0.element[name] ?? "(none)") on rank \($0.offset)" }
        throw DistributedError("the ranks of this job were started with different settings: \(name) is "
            + "\(perRank.joined(separator: ", ")) (rank \(other) is the first that differs from rank 0); give every rank "
            + "the same command line")
    }

    /// The element-wise sums of every rank's `values`, added in rank order, so every rank gets the same bits
    /// whatever algorithm MPI would have chosen (`MPI_Allreduce` promises no order).
    /// - Precondition: Every rank passes as many values.
    public func sumInRankOrder(_ values: [Double]) -> [Double] {
        let all = allgather(sameCount: values, .float64)
        return (0..<values.count).map { index in
            (1..<size).reduce(all[index]) { $0 + all[$1 * values.count + index] }
        }
    }

    /// Starting positions of consecutive runs of `counts`.
    static func offsets(_ counts: [Int]) -> [Int] {
        var offsets: [Int] = [], total = 0
        for count in counts {
            offsets.append(total)
            total += count
        }
        return offsets
    }
}

extension DistributedError {
    /// A failure of one rank, as every rank reports it: the rank first, unless the job has only one.
    init(onRank rank: Int, of size: Int, _ words: String) {
        self.init(size > 1 ? "rank \(rank): \(words)" : words, rank: rank)
    }
}

/// Calls `body` with the address of `array`'s elements, never nil (MPI wants an address even for nothing).
func withBytes<T>(_ array: [T], _ body: (UnsafeRawPointer) -> Void) {
    array.withUnsafeBytes { bytes in
        if let base = bytes.baseAddress { body(base) } else { withUnsafeBytes(of: 0) { body($0.baseAddress!) } }
    }
}
