import Regula

/// A run of tensor pieces of one element type that a collective moves at once, as Horovod's tensor fusion
/// and torch DDP's buckets do: one collective per megabytes of tensors, not one per tensor.
///
/// A piece is a range of one parameter's elements; a parameter larger than a bucket is cut into several
/// pieces, so every count a collective sees stays far below MPI's 2³¹ limit.
struct Bucket: Equatable {
    /// A range of one parameter's elements.
    struct Piece: Equatable {
        /// The parameter's position in the optimizer's list.
        let parameter: Int
        let elements: Range<Int>
    }

    let dtype: DType
    let pieces: [Piece]

    /// The largest bucket: 256 MiB (a bucket may hold up to twice ``bytes``, which must stay below this).
    static let largest = 1 << 28

    /// The tensors `members` (position, element count, element type; in the optimizer's order) cut into
    /// buckets of at least `bytes` (except the last of each element type) and at most twice that. Every rank
    /// computes the same buckets from the same members.
    static func plan(_ members: [(parameter: Int, count: Int, dtype: DType)], bytes: Int) -> [Bucket] {
        var open: [DType: [Piece]] = [:], openBytes: [DType: Int] = [:]
        var buckets: [Bucket] = []
        func close(_ dtype: DType) {
            if let pieces = open[dtype], !pieces.isEmpty { buckets.append(Bucket(dtype: dtype, pieces: pieces)) }
            open[dtype] = []
            openBytes[dtype] = 0
        }
        for member in members {
            let limit = max(1, bytes / member.dtype.size)
            var start = 0
            repeat {
                let end = min(member.count, start + limit)
                open[member.dtype, default: []].append(Piece(parameter: member.parameter, elements: start..<end))
                openBytes[member.dtype, default: 0] += (end - start) * member.dtype.size
                if openBytes[member.dtype]! >= bytes { close(member.dtype) }
                start = end
            } while start < member.count
        }
        for dtype in [DType.float32, .float64] { close(dtype) }
        return buckets
    }
}
