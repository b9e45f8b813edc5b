/// A checkpoint that could not be written, or that does not fit the optimizer it is loaded into. A refused
/// load changes nothing; a failed save leaves any earlier file at that path as it was.
public struct CheckpointError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    package init(_ description: String) { self.description = description }
}
