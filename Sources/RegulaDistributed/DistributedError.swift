/// Why a distributed optimizer could not be built, step, or save or load a checkpoint.
///
/// Thrown on every rank alike: the ranks exchange what went wrong before any of them throws, so no rank is
/// left waiting for the others, and every rank reports the same words. When one rank's failure decided it,
/// ``rank`` says which (the lowest, when several failed). A refused step or load changes nothing on any rank.
public struct DistributedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, naming the rank, parameter, group or option concerned and what is allowed.
    public let description: String
    /// The rank whose failure this is, or nil when it is everyone's (the ranks disagree, or all refused).
    public let rank: Int?

    package init(_ description: String, rank: Int? = nil) {
        self.description = description
        self.rank = rank
    }
}
