import CMPI
import Dispatch
import Foundation

/// The processes of an MPI job, as a distributed optimizer talks to them: the only place RegulaDistributed
/// calls MPI.
///
/// ``world()`` loads Open MPI's libmpi and initializes MPI on first use (so a program that never asks for it
/// neither needs Open MPI installed nor starts MPI) and finalizes it when the process exits. Its collectives
/// run on a duplicate of `MPI_COMM_WORLD`, so they never mix with messages a program exchanges over MPI itself.
///
/// Every collective must be called by every rank, in the same order; a distributed optimizer arranges that.
/// One MPI call runs at a time (the communicator takes a lock around each), so several threads may share it,
/// but collectives issued from two threads in different orders on different ranks would not match.
///
/// An MPI call that fails is not a user mistake but a broken job (a lost process or network): the
/// communicator prints what failed and aborts every rank with `MPI_Abort`, rather than leave the others
/// waiting forever.
public final class Communicator: @unchecked Sendable {
    /// This process's rank, from 0 to ``size`` − 1.
    public let rank: Int
    /// The number of processes.
    public let size: Int
    /// How many of the processes run on this machine (`MPI_COMM_TYPE_SHARED`), to share its cores among them.
    public let ranksOnThisMachine: Int
    private let handle: MPI_Comm
    private let mpi: regula_mpi
    private let lock = NSLock()
    private var spentNanoseconds: UInt64 = 0
    private var sentBytes = 0

    /// Nanoseconds spent inside MPI calls so far.
    var communicationNanoseconds: UInt64 { lock.withLock { spentNanoseconds } }
    /// Bytes this rank has handed to MPI for other ranks so far.
    var bytesSent: Int { lock.withLock { sentBytes } }

    private static let worldLock = NSLock()
    nonisolated(unsafe) private static var sharedWorld: Communicator?

    /// Open MPI's functions and predefined handles, or why they could not be loaded: tried once per process.
    private static let library = Result { () throws(DistributedError) -> regula_mpi in
        var error = [CChar](repeating: 0, count: 2048)
        guard let mpi = regula_mpi_load(&error, error.count) else {
            throw DistributedError(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return mpi.pointee
    }

    /// Every process of the job (`MPI_COMM_WORLD`), initializing MPI first if nobody has. Started without
    /// `mpirun`, a program is a job of one process.
    /// - Throws: ``DistributedError`` when Open MPI cannot be loaded (not installed, or `REGULA_MPI_LIBRARY`
    ///   names another file), MPI cannot be initialized, or was finalized already.
    public static func world() throws(DistributedError) -> Communicator {
        worldLock.lock()
        defer { worldLock.unlock() }
        if let sharedWorld { return sharedWorld }
        let mpi = try library.get()
        var initialized: Int32 = 0, finalized: Int32 = 0
        _ = mpi.Initialized(&initialized)
        _ = mpi.Finalized(&finalized)
        guard finalized == 0 else { throw DistributedError("MPI was finalized already in this process; it cannot start again") }
        if initialized == 0 {
            var provided: Int32 = 0
            let code = mpi.Init_thread(nil, nil, REGULA_MPI_THREAD_SERIALIZED, &provided)
            guard code == REGULA_MPI_SUCCESS else {
                throw DistributedError("MPI could not be initialized: \(errorWords(code, mpi)); start the program with mpirun (Open MPI)")
            }
            // Whoever initializes MPI finalizes it: here, when the process exits.
            atexit {
                guard case .success(let mpi) = Communicator.library else { return }
                var finalized: Int32 = 0
                _ = mpi.Finalized(&finalized)
                if finalized == 0 { _ = mpi.Finalize() }
            }
        }
        var duplicate = mpi.comm_null
        _ = mpi.Comm_dup(mpi.comm_world, &duplicate)
        let world = Communicator(duplicate, mpi)
        sharedWorld = world
        return world
    }

    private init(_ handle: MPI_Comm, _ mpi: regula_mpi) {
        self.handle = handle
        self.mpi = mpi
        _ = mpi.Comm_set_errhandler(handle, mpi.errors_return)
        var rank: Int32 = 0, size: Int32 = 0
        _ = mpi.Comm_rank(handle, &rank)
        _ = mpi.Comm_size(handle, &size)
        self.rank = Int(rank)
        self.size = Int(size)
        var machine = mpi.comm_null, local: Int32 = 1
        if mpi.Comm_split_type(handle, REGULA_MPI_COMM_TYPE_SHARED, rank, mpi.info_null, &machine) == REGULA_MPI_SUCCESS {
            _ = mpi.Comm_size(machine, &local)
            _ = mpi.Comm_free(&machine)
        }
        ranksOnThisMachine = Int(local)
    }

    /// Stops every rank of the job with `status`, after `message` (if any) on standard error. For a failure
    /// only this rank knows about, which the others would otherwise wait on forever.
    public func abort(status: Int32 = 1, message: String? = nil) -> Never {
        if let message { FileHandle.standardError.write(Data("\(message)\n".utf8)) }
        _ = mpi.Abort(handle, status)
        exit(status)
    }

    // MARK: - Collectives over raw memory

    /// The MPI element types the collectives move.
    enum Element {
        case float32, float64, byte, int64

        var size: Int {
            switch self {
            case .float32: 4
            case .float64, .int64: 8
            case .byte: 1
            }
        }

        fileprivate func datatype(_ mpi: regula_mpi) -> MPI_Datatype {
            switch self {
            case .float32: mpi.float32
            case .float64: mpi.float64
            case .byte: mpi.byte
            case .int64: mpi.int64
            }
        }
    }

    /// `MPI_Allgather`: `count` elements from every rank, in rank order, into `receive`.
    func allgather(_ send: UnsafeRawPointer, count: Int, into receive: UnsafeMutableRawPointer, _ element: Element) {
        let type = element.datatype(mpi), n = Self.count(count)
        call("MPI_Allgather", sent: count * element.size * (size - 1)) { mpi.Allgather(send, n, type, receive, n, type, handle) }
    }

    /// `MPI_Allgatherv`: rank r's `counts[r]` elements land at `displacements[r]` (in elements) of `receive`.
    /// With `send` nil, this rank's elements are already in their place in `receive` (`MPI_IN_PLACE`).
    func allgatherv(_ send: UnsafeRawPointer?, count: Int, into receive: UnsafeMutableRawPointer, counts: [Int],
                    displacements: [Int], _ element: Element) {
        let type = element.datatype(mpi)
        let counts32 = counts.map(Self.count), displacements32 = displacements.map(Self.count)
        call("MPI_Allgatherv", sent: counts[rank] * element.size * (size - 1)) {
            mpi.Allgatherv(send ?? regula_mpi_in_place(), Self.count(count), type, receive, counts32,
                           displacements32, type, handle)
        }
    }

    /// `MPI_Alltoallv`: `sendCounts[r]` elements at `sendDisplacements[r]` go to rank r; what rank s sends
    /// here lands at `receiveDisplacements[s]`.
    func alltoallv(_ send: UnsafeRawPointer, counts sendCounts: [Int], displacements sendDisplacements: [Int],
                   into receive: UnsafeMutableRawPointer, counts receiveCounts: [Int], displacements receiveDisplacements: [Int],
                   _ element: Element) {
        let type = element.datatype(mpi)
        let (sc, sd) = (sendCounts.map(Self.count), sendDisplacements.map(Self.count))
        let (rc, rd) = (receiveCounts.map(Self.count), receiveDisplacements.map(Self.count))
        let sent = (sendCounts.reduce(0, +) - sendCounts[rank]) * element.size
        call("MPI_Alltoallv", sent: sent) { mpi.Alltoallv(send, sc, sd, type, receive, rc, rd, type, handle) }
    }

    /// `MPI_Bcast`: `count` elements of `buffer` from `root` to every rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, count: Int, from root: Int, _ element: Element) {
        let type = element.datatype(mpi)
        call("MPI_Bcast", sent: rank == root ? count * element.size * (size - 1) : 0) {
            mpi.Bcast(buffer, Self.count(count), type, Int32(root), handle)
        }
    }

    /// `MPI_Gatherv`: every rank's `count` elements to `root`, rank r's at `displacements[r]` of `receive`
    /// (read only on the root).
    func gatherv(_ send: UnsafeRawPointer, count: Int, into receive: UnsafeMutableRawPointer?, counts: [Int],
                 displacements: [Int], root: Int, _ element: Element) {
        let type = element.datatype(mpi)
        let counts32 = counts.map(Self.count), displacements32 = displacements.map(Self.count)
        call("MPI_Gatherv", sent: rank == root ? 0 : count * element.size) {
            mpi.Gatherv(send, Self.count(count), type, receive, counts32, displacements32, type, Int32(root), handle)
        }
    }

    /// `MPI_Scatterv`: `counts[r]` elements at `displacements[r]` of the root's `send` to rank r's `receive`.
    func scatterv(_ send: UnsafeRawPointer?, counts: [Int], displacements: [Int], into receive: UnsafeMutableRawPointer,
                  count: Int, root: Int, _ element: Element) {
        let type = element.datatype(mpi)
        let counts32 = counts.map(Self.count), displacements32 = displacements.map(Self.count)
        call("MPI_Scatterv", sent: rank == root ? (counts.reduce(0, +) - counts[root]) * element.size : 0) {
            mpi.Scatterv(send, counts32, displacements32, type, receive, Self.count(count), type, Int32(root), handle)
        }
    }

    /// One MPI call, timed, under the lock; a failure aborts the job with MPI's words.
    private func call(_ name: String, sent: Int, _ body: () -> Int32) {
        lock.lock()
        defer { lock.unlock() }
        let start = DispatchTime.now().uptimeNanoseconds
        let code = body()
        spentNanoseconds += DispatchTime.now().uptimeNanoseconds - start
        sentBytes += sent
        if code != REGULA_MPI_SUCCESS {
            abort(message: "regula: \(name) failed on rank \(rank) of \(size): \(Self.errorWords(code, mpi)); stopping every rank")
        }
    }

    /// MPI counts are 32-bit; the layouts that call the collectives keep every count below 2³¹
    /// (``DistributedOptimizer`` refuses a parameter whose share would not fit).
    private static func count(_ value: Int) -> Int32 {
        precondition(value >= 0 && value <= Int(Int32.max), "an MPI count of \(value) does not fit in 32 bits")
        return Int32(value)
    }

    private static func errorWords(_ code: Int32, _ mpi: regula_mpi) -> String {
        var buffer = [CChar](repeating: 0, count: Int(REGULA_MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard mpi.Error_string(code, &buffer, &length) == REGULA_MPI_SUCCESS else { return "MPI error \(code)" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
