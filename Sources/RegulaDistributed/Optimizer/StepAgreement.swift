import Foundation
import Regula

/// The conversation of the ranks during one step, once the gradients are averaged: the reductions they
/// combine (sharded mode) and the outcome they agree on.
///
/// Every message is one all-gather, so each rank sees every rank's message. A rank whose step fails (a rule
/// error, refused options, a non-finite value) runs no more reductions: its next message is its outcome, which
/// may meet the other ranks' next reduction. Every rank then sees that outcome in the same all-gather and
/// reaches the same verdict from the same messages; the ranks still stepping finish locally without another
/// message and are told the verdict when they ask. So a failing rank never leaves another waiting, and no
/// rank keeps a step another rank gave up.
///
/// The verdict is the worst outcome: a failure (the lowest failing rank's) before a skip (the lowest
/// skipping rank's) before applied.
final class StepAgreement: ReductionExchange, @unchecked Sendable {
    /// What every rank does with the step.
    enum Verdict: Equatable {
        case applied
        case skipped(rank: Int, reason: String)
        case failed(rank: Int, words: String)
    }

    private enum Kind: UInt8 {
        case reduction = 0, applied, skipped, failed
    }

    private let communicator: Communicator
    /// Reached once a message carried an outcome.
    private(set) var verdict: Verdict?

    init(communicator: Communicator) {
        self.communicator = communicator
    }

    func combineAcrossProcesses(_ values: UnsafeMutableBufferPointer<Double>, combines: [Reduction.Combine]) {
        guard verdict == nil else { return }   // a rank gave up the step: nothing more is exchanged
        var message: [UInt8] = [Kind.reduction.rawValue]
        message.append(contentsOf: UnsafeRawBufferPointer(values))
        let all = exchange(message)
        if let decided = Self.verdict(all, size: communicator.size) {
            verdict = decided
            return
        }
        let width = combines.count
        for index in values.indices {
            var combined = combines[index % width].identity
            for reply in all {
                let value = reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 1 + index * 8, as: Double.self) }
                combined = combines[index % width](combined, value)
            }
            values[index] = combined
        }
    }

    /// This rank's outcome in, the one every rank takes out (see ``DistributionSeam/step(agreeing:)``).
    func agree(_ local: DistributionSeam.LocalStep) -> DistributionSeam.LocalStep {
        if verdict == nil {
            var message: [UInt8]
            switch local {
            case .applied: message = [Kind.applied.rawValue]
            case .skipped(let reason): message = [Kind.skipped.rawValue] + Array(reason.utf8)
            case .failed(let error): message = [Kind.failed.rawValue] + Array(error.description.utf8)
            }
            verdict = Self.verdict(exchange(message), size: communicator.size)
        }
        switch verdict! {
        case .applied:
            return .applied
        case .skipped(let rank, let reason):
            return .skipped(reason: DistributedError(onRank: rank, of: communicator.size, reason).description)
        case .failed(_, let words):
            // Never seen by the caller: DistributedOptimizer throws the verdict in its own words.
            if case .failed = local { return local }
            return .failed(.kernelFailed(rule: "", parameter: "", status: 0, message: words))
        }
    }

    /// Bytes each rank sends in the first all-gather of an exchange: room for a length and 252 bytes of message.
    private static let inlineBytes = 256

    /// Every rank's `message`, in rank order. One fixed-size all-gather carries the common messages (a
    /// parameter's reductions, an outcome in a few words); only when some rank's message is longer does a
    /// second, variable-size exchange carry them whole. Every rank sees every length, so all take the same path.
    private func exchange(_ message: [UInt8]) -> [[UInt8]] {
        let room = Self.inlineBytes - 4
        var fixed = [UInt8](repeating: 0, count: Self.inlineBytes)
        withUnsafeBytes(of: UInt32(message.count).littleEndian) { fixed.replaceSubrange(0..<4, with: $0) }
        fixed.replaceSubrange(4..<(4 + min(room, message.count)), with: message.prefix(room))
        let all = communicator.allgather(sameCount: fixed, .byte)
        let messages = (0..<communicator.size).map { rank -> (length: Int, start: Int) in
            let start = rank * Self.inlineBytes
            let length = all[start..<(start + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
            return (length, start + 4)
        }
        guard messages.allSatisfy({ $0.length <= room }) else { return communicator.allgather(bytes: message) }
        return messages.map { Array(all[$0.start..<($0.start + $0.length)]) }
    }

    /// The verdict of one exchange's messages, or nil when every rank sent a reduction.
    private static func verdict(_ all: [[UInt8]], size: Int) -> Verdict? {
        let kinds = all.map { $0.first.flatMap(Kind.init(rawValue:)) }
        let words = all.map { String(decoding: $0.dropFirst(), as: UTF8.self) }
        if kinds.allSatisfy({ $0 == .reduction }) {
            let lengths = Set(all.map(\.count))
            if lengths.count == 1 { return nil }
            return .failed(rank: 0, words: "the ranks combined different numbers of reduction values ("
                + all.map { "\(($0.count - 1) / 8)" }.joined(separator: ", ") + " in rank order)")
        }
        if let rank = kinds.firstIndex(of: .failed) { return .failed(rank: rank, words: words[rank]) }
        if let rank = kinds.firstIndex(of: .skipped) { return .skipped(rank: rank, reason: words[rank]) }
        if let rank = kinds.firstIndex(of: .reduction) {
            // Every rank that reached its outcome took the step, yet another still combines reductions: the
            // ranks run different chains or steps. Refused on every rank rather than kept on some.
            return .failed(rank: rank, words: "rank \(rank) was still combining reductions when the others had finished the step")
        }
        return kinds.allSatisfy({ $0 == .applied }) ? .applied : .failed(rank: 0, words: "a rank sent an unreadable outcome")
    }
}
