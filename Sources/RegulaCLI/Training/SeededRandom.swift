import Foundation

/// The numbers the training problems draw (synthetic data, starting weights, the held-out split): a 64-bit
/// linear congruential generator (Knuth's MMIX constants), the same sequence on every machine and run.
struct SeededRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// Uniform in [0, 1), from the top 53 bits of the next state.
    mutating func uniform() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53)
    }

    /// Standard normal (Box–Muller, one of the pair).
    mutating func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }

    /// `values` in an order drawn by Fisher–Yates.
    mutating func shuffled<T>(_ values: [T]) -> [T] {
        var values = values
        for index in values.indices.reversed() where index > 0 {
            values.swapAt(index, min(Int(uniform() * Double(index + 1)), index))
        }
        return values
    }
}
