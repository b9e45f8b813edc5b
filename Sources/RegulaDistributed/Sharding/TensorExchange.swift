import Regula

/// Moves tensors between ranks bucket by bucket: the reduce-scatter that averages gradients, the all-gather
/// that puts shares back together, and the broadcast of a rank's values.
///
/// Sums are taken in rank order by the rank that owns each element (an `MPI_Alltoallv` brings it every
/// rank's copy of its share), never by `MPI_Allreduce`, whose order MPI does not fix: so an element's
/// average is the same whatever algorithm or network MPI uses, and every rank ends with the same bits. Who
/// owns what is the ``ShareLayout``'s: of a split parameter each rank owns a share, and per step each rank
/// sends (N−1)/N of its bytes in each phase, as a ring all-reduce does; a parameter owned whole is summed
/// by, and gathered from, its owner alone, so the others send it all to the owner and receive it all back.
final class TensorExchange {
    /// Where a tensor's elements are: element i of the parameter at `base + (i − first) · size`. A whole
    /// tensor has `first` 0; a share of one starts at its first element.
    struct Place {
        let base: UnsafeMutableRawPointer
        let first: Int

        func address(of element: Int, size: Int) -> UnsafeMutableRawPointer { base + (element - first) * size }
    }

    private let communicator: Communicator
    /// Which rank sums, and owns, which elements of each parameter.
    private let layout: ShareLayout
    private let send = ScratchMemory(), receive = ScratchMemory()

    init(communicator: Communicator, layout: ShareLayout) {
        self.communicator = communicator
        self.layout = layout
    }

    /// The elements of `bucket` each rank owns, per rank, and where each rank's run starts.
    private func segments(_ bucket: Bucket) -> (counts: [Int], offsets: [Int]) {
        let sizes = (0..<communicator.size).map { rank in
            bucket.pieces.reduce(0) { $0 + layout.share(of: $1, rank: rank).count }
        }
        return (sizes, Communicator.offsets(sizes))
    }

    /// Averages the whole tensors at `whole` over every rank, leaving in `target` this rank's share of the
    /// average (element by element: the sum in rank order, divided by the number of ranks).
    func reduceScatter(_ bucket: Bucket, whole: (Int) -> UnsafeRawPointer, target: (Int) -> Place) {
        let size = bucket.dtype.size, ranks = communicator.size, me = communicator.rank
        let (sizes, offsets) = segments(bucket)
        // Rank r's elements of every piece, one rank after the other. A bucket of one piece is laid out so
        // already, in the tensor itself: it is sent from there, without a copy.
        let outgoing: UnsafeRawPointer
        if bucket.pieces.count == 1 {
            let piece = bucket.pieces[0]
            outgoing = whole(piece.parameter) + piece.elements.lowerBound * size
        } else {
            let packed = send.bytes(sizes.reduce(0, +) * size)
            for rank in 0..<ranks {
                var position = offsets[rank]
                for piece in bucket.pieces {
                    let share = layout.share(of: piece, rank: rank)
                    (packed + position * size).copyMemory(from: whole(piece.parameter) + share.lowerBound * size, byteCount: share.count * size)
                    position += share.count
                }
            }
            outgoing = UnsafeRawPointer(packed)
        }
        let mine = sizes[me]
        let incoming = receive.bytes(ranks * mine * size)
        communicator.alltoallv(outgoing, counts: sizes, displacements: offsets, into: incoming,
                               counts: Array(repeating: mine, count: ranks), displacements: (0..<ranks).map { $0 * mine },
                               bucket.dtype.element)
        var position = 0
        for piece in bucket.pieces {
            let share = layout.share(of: piece, rank: me)
            let destination = target(piece.parameter).address(of: share.lowerBound, size: size)
            let source = incoming + position * size
            switch bucket.dtype {
            case .float32: average(Float.self, source, stride: mine, ranks: ranks, count: share.count, into: destination)
            case .float64: average(Double.self, source, stride: mine, ranks: ranks, count: share.count, into: destination)
            }
            position += share.count
        }
    }

    /// Fills every rank's share of the tensors at `whole` from the rank that owns it (each rank's own share
    /// is read from `whole` and left as it is).
    func allGather(_ bucket: Bucket, whole: (Int) -> UnsafeMutableRawPointer) {
        let size = bucket.dtype.size, me = communicator.rank
        let (sizes, offsets) = segments(bucket)
        // A bucket of one piece is gathered in place, into the tensor itself.
        if bucket.pieces.count == 1 {
            let piece = bucket.pieces[0]
            communicator.allgatherv(nil, count: sizes[me], into: whole(piece.parameter) + piece.elements.lowerBound * size,
                                    counts: sizes, displacements: offsets, bucket.dtype.element)
            return
        }
        let outgoing = send.bytes(sizes[me] * size)
        var position = 0
        for piece in bucket.pieces {
            let share = layout.share(of: piece, rank: me)
            (outgoing + position * size).copyMemory(from: whole(piece.parameter) + share.lowerBound * size, byteCount: share.count * size)
            position += share.count
        }
        let incoming = receive.bytes(sizes.reduce(0, +) * size)
        communicator.allgatherv(outgoing, count: sizes[me], into: incoming, counts: sizes, displacements: offsets, bucket.dtype.element)
        for rank in 0..<communicator.size where rank != me {
            var position = offsets[rank]
            for piece in bucket.pieces {
                let share = layout.share(of: piece, rank: rank)
                (whole(piece.parameter) + share.lowerBound * size).copyMemory(from: incoming + position * size, byteCount: share.count * size)
                position += share.count
            }
        }
    }

    /// Copies the tensors at `whole` on rank `root` to every other rank's `whole`.
    func broadcast(_ bucket: Bucket, whole: (Int) -> UnsafeMutableRawPointer, from root: Int) {
        let size = bucket.dtype.size
        let total = bucket.pieces.reduce(0) { $0 + $1.elements.count }
        let buffer = send.bytes(total * size)
        var position = 0
        if communicator.rank == root {
            for piece in bucket.pieces {
                (buffer + position * size).copyMemory(from: whole(piece.parameter) + piece.elements.lowerBound * size,
                                                      byteCount: piece.elements.count * size)
                position += piece.elements.count
            }
        }
        communicator.broadcast(buffer, count: total, from: root, bucket.dtype.element)
        guard communicator.rank != root else { return }
        for piece in bucket.pieces {
            (whole(piece.parameter) + piece.elements.lowerBound * size).copyMemory(from: buffer + position * size,
                                                                                 byteCount: piece.elements.count * size)
            position += piece.elements.count
        }
    }
}

/// `destination[k] = (source[k] + source[stride + k] + … + source[(ranks − 1)·stride + k]) / ranks`, added in
/// rank order: plain loops over one rank's run at a time, which the compiler vectorizes.
private func average<T: BinaryFloatingPoint>(_: T.Type, _ source: UnsafeRawPointer, stride: Int, ranks: Int, count: Int,
                                             into destination: UnsafeMutableRawPointer) {
    let output = destination.assumingMemoryBound(to: T.self), input = source.assumingMemoryBound(to: T.self)
    output.update(from: input, count: count)
    for rank in 1..<max(ranks, 1) {
        let run = input + rank * stride
        for k in 0..<count { output[k] += run[k] }
    }
    let divisor = T(ranks)
    for k in 0..<count { output[k] /= divisor }
}

extension DType {
    /// The MPI element type of these values.
    var element: Communicator.Element {
        switch self {
        case .float32: .float32
        case .float64: .float64
        }
    }
}
