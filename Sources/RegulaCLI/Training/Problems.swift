import Foundation

/// A model trained by full-batch gradient steps: a weight vector (regularized) and a bias (not regularized).
protocol TrainingProblem {
    var title: String { get }
    var weightCount: Int { get }
    /// Samples in the data.
    var rowCount: Int { get }
    /// The loss and its gradients at `weights`, `bias`, summed over the samples `rows` (a distributed run
    /// gives each rank a share of them).
    func evaluate(weights: [Double], bias: Double, rows: Range<Int>) -> (loss: Double, weights: [Double], bias: Double)
    /// What to report about a trained model, as (label, value) pairs.
    func report(weights: [Double], bias: Double) -> [(String, String)]
}

extension TrainingProblem {
    /// The mean loss and its gradients over all the data at `weights`, `bias`.
    func evaluate(weights: [Double], bias: Double) -> (loss: Double, weights: [Double], bias: Double) {
        let (loss, gradient, gradientBias) = evaluate(weights: weights, bias: bias, rows: 0..<rowCount)
        let n = Double(rowCount)
        return (loss / n, gradient.map { $0 / n }, gradientBias / n)
    }
}

/// L1-regularized logistic regression: mean cross-entropy of sigmoid(x·w + b) against 0/1 labels.
struct LogisticRegression: TrainingProblem {
    let data: Dataset
    var title: String { "logistic regression on \(data.name)" }
    var weightCount: Int { data.columns }
    var rowCount: Int { data.rows }

    func evaluate(weights: [Double], bias: Double, rows: Range<Int>) -> (loss: Double, weights: [Double], bias: Double) {
        var loss = 0.0, gradient = [Double](repeating: 0, count: data.columns), gradientBias = 0.0
        for row in rows {
            var z = bias
            for column in 0..<data.columns { z += data.features[row * data.columns + column] * weights[column] }
            let y = data.labels[row]
            // log(1 + e^z) − y·z, computed without overflow.
            loss += max(z, 0) + log1p(exp(-abs(z))) - y * z
            let error = 1 / (1 + exp(-z)) - y
            for column in 0..<data.columns { gradient[column] += error * data.features[row * data.columns + column] }
            gradientBias += error
        }
        return (loss, gradient, gradientBias)
    }

    func accuracy(weights: [Double], bias: Double) -> Double {
        var correct = 0
        for row in 0..<data.rows {
            var z = bias
            for column in 0..<data.columns { z += data.features[row * data.columns + column] * weights[column] }
            if (z > 0 ? 1.0 : 0.0) == data.labels[row] { correct += 1 }
        }
        return Double(correct) / Double(data.rows)
    }

    func report(weights: [Double], bias: Double) -> [(String, String)] {
        [("accuracy", String(format: "%.1f %%", 100 * accuracy(weights: weights, bias: bias)))]
    }
}

/// Least squares on synthetic data whose true coefficients are known to be sparse: how well does a penalty
/// find the support?
struct SparseRegression: TrainingProblem {
    let rows = 200, columns = 50
    let features: [Double]
    let targets: [Double]
    let truth: [Double]
    var title: String { "sparse regression (200 × 50, 5 true non-zero coefficients)" }
    var weightCount: Int { columns }
    var rowCount: Int { rows }

    init(seed: UInt64 = 42) {
        var state = seed
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
        func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
        var truth = [Double](repeating: 0, count: 50)
        for (index, value) in zip([3, 11, 19, 28, 44], [2.5, -2.0, 1.5, -3.0, 1.8]) { truth[index] = value }
        let features = (0..<(200 * 50)).map { _ in normal() }
        targets = (0..<200).map { row in
            (0..<50).reduce(0.0) { $0 + features[row * 50 + $1] * truth[$1] } + 0.1 * normal()
        }
        self.features = features
        self.truth = truth
    }

    func evaluate(weights: [Double], bias: Double, rows: Range<Int>) -> (loss: Double, weights: [Double], bias: Double) {
        var loss = 0.0, gradient = [Double](repeating: 0, count: columns), gradientBias = 0.0
        for row in rows {
            var prediction = bias
            for column in 0..<columns { prediction += features[row * columns + column] * weights[column] }
            let residual = prediction - targets[row]
            loss += residual * residual / 2
            for column in 0..<columns { gradient[column] += residual * features[row * columns + column] }
            gradientBias += residual
        }
        return (loss, gradient, gradientBias)
    }

    func report(weights: [Double], bias: Double) -> [(String, String)] {
        let support = Set(truth.indices.filter { truth[$0] != 0 })
        let found = Set(weights.indices.filter { weights[$0] != 0 })
        return [("true support kept", "\(support.intersection(found).count) of \(support.count)"),
                ("false non-zeros", "\(found.subtracting(support).count)")]
    }
}
