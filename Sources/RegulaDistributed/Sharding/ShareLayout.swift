/// Which elements of each parameter each rank owns in sharded mode (and which it sums when gradients are
/// averaged, in either mode).
///
/// A parameter is either **split**: contiguous shares as even as they can be, rank r owning elements
/// [count·r/N, count·(r+1)/N), so that its shares laid one after the other in rank order are the whole
/// parameter; or **owned whole** by one rank, the others owning none of it: a parameter whose group's chain
/// has a whole-tensor rule (`muon`, `adafactor`), which must see the whole matrix, as distributed Muon
/// implementations place it. The owners are spread over the ranks: in parameter order, each whole-owned
/// parameter goes to the rank owning the fewest whole-owned elements so far (the lowest such rank on a tie).
/// Every rank computes the same layout from the same counts.
struct ShareLayout: Equatable {
    let ranks: Int
    /// Element counts of the parameters, by position.
    let counts: [Int]
    /// The rank that owns each parameter whole; nil for a split one.
    let owners: [Int?]

    /// The layout of parameters of `counts` elements over `ranks` ranks, those marked in `ownedWhole` owned
    /// whole (every parameter split when it is empty).
    init(ranks: Int, counts: [Int], ownedWhole: [Bool] = []) {
        self.ranks = ranks
        self.counts = counts
        var load = [Int](repeating: 0, count: max(ranks, 1))
        owners = counts.indices.map { index in
            guard index < ownedWhole.count, ownedWhole[index] else { return nil }
            let owner = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            load[owner] += counts[index]
            return owner
        }
    }

    /// Rank `rank`'s elements of parameter `index`.
    func share(ofParameter index: Int, rank: Int) -> Range<Int> {
        let count = counts[index]
        if let owner = owners[index] { return rank == owner ? 0..<count : 0..<0 }
        return count * rank / ranks ..< count * (rank + 1) / ranks
    }

    /// Rank `rank`'s elements of `piece`.
    func share(of piece: Bucket.Piece, rank: Int) -> Range<Int> {
        piece.elements.clamped(to: share(ofParameter: piece.parameter, rank: rank))
    }

    /// Rank `rank`'s elements of a state slot of parameter `index` that holds `length` elements: all of them on
    /// the owner of a parameter owned whole (a rows or columns slot is not as long as the parameter) and none on
    /// the others, or the rank's share of a split parameter's elementwise slot.
    func slotElements(ofParameter index: Int, length: Int, rank: Int) -> Int {
        if let owner = owners[index] { return rank == owner ? length : 0 }
        return share(ofParameter: index, rank: rank).count
    }

    /// The rank that steps parameter `index`'s first element, whose scalar state slots are the parameter's:
    /// its owner, or the first rank with elements of it.
    func leadingRank(ofParameter index: Int) -> Int {
        owners[index] ?? (0..<ranks).first { !share(ofParameter: index, rank: $0).isEmpty } ?? 0
    }
}
