import Foundation

/// One parameter of a problem's model, as the optimizer is given it.
struct ModelParameter {
    let name: String
    /// Row-major; `[n]` for a vector. Kept for `Parameter(name, values:, shape:)`.
    let shape: [Int]
    /// Whether the chain's penalties (weight decay, L1) apply: they do to weights, not to biases.
    let isPenalized: Bool
    let initialValues: [Double]
}

/// A model trained by full-batch gradient steps, one step per epoch, over named parameters.
protocol TrainingProblem {
    var title: String { get }
    /// Samples trained on.
    var rowCount: Int { get }
    /// The model's parameters, in the order ``evaluate(_:rows:)`` takes and returns them.
    var parameters: [ModelParameter] { get }
    /// The configurations compared on this problem, one column of the table each; nil for the L1 chains the
    /// command compares (or `--rules` names).
    var runs: [TrainingRun]? { get }
    /// Epochs trained when `--epochs` is not given.
    var standardEpochs: Int { get }
    /// The loss and its gradients at `values` (one array per parameter), summed over the samples `rows` (a
    /// distributed run gives each rank a share of them).
    func evaluate(_ values: [[Double]], rows: Range<Int>) -> (loss: Double, gradients: [[Double]])
    /// What to report about a trained model, as (label, value) pairs.
    func report(_ values: [[Double]]) -> [(String, String)]
}

extension TrainingProblem {
    var runs: [TrainingRun]? { nil }
    var standardEpochs: Int { 500 }

    /// Elements of the penalized parameters (the weights).
    var weightCount: Int { parameters.filter(\.isPenalized).reduce(0) { $0 + $1.initialValues.count } }

    /// The mean loss over all the data at `values`.
    func meanLoss(_ values: [[Double]]) -> Double { evaluate(values, rows: 0..<rowCount).loss / Double(rowCount) }
}

/// A weight per feature, penalized, and a bias, both starting at 0.
private func linearModel(features: Int) -> [ModelParameter] {
    [ModelParameter(name: "weights", shape: [features], isPenalized: true, initialValues: [Double](repeating: 0, count: features)),
     ModelParameter(name: "bias", shape: [1], isPenalized: false, initialValues: [0])]
}

/// L1-regularized logistic regression: mean cross-entropy of sigmoid(x·w + b) against 0/1 labels.
struct LogisticRegression: TrainingProblem {
    let data: Dataset
    var title: String { "logistic regression on \(data.name)" }
    var rowCount: Int { data.rows }
    var parameters: [ModelParameter] { linearModel(features: data.columns) }

    func evaluate(_ values: [[Double]], rows: Range<Int>) -> (loss: Double, gradients: [[Double]]) {
        let weights = values[0], bias = values[1][0]
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
        return (loss, [gradient, [gradientBias]])
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

    func report(_ values: [[Double]]) -> [(String, String)] {
        [("accuracy", String(format: "%.1f %%", 100 * accuracy(weights: values[0], bias: values[1][0])))]
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
    var rowCount: Int { rows }
    var parameters: [ModelParameter] { linearModel(features: columns) }

    init(seed: UInt64 = 42) {
        var random = SeededRandom(seed: seed)
        func normal() -> Double { random.normal() }
        var truth = [Double](repeating: 0, count: 50)
        for (index, value) in zip([3, 11, 19, 28, 44], [2.5, -2.0, 1.5, -3.0, 1.8]) { truth[index] = value }
        let features = (0..<(200 * 50)).map { _ in normal() }
        targets = (0..<200).map { row in
            (0..<50).reduce(0.0) { $0 + features[row * 50 + $1] * truth[$1] } + 0.1 * normal()
        }
        self.features = features
        self.truth = truth
    }

    func evaluate(_ values: [[Double]], rows: Range<Int>) -> (loss: Double, gradients: [[Double]]) {
        let weights = values[0], bias = values[1][0]
        var loss = 0.0, gradient = [Double](repeating: 0, count: columns), gradientBias = 0.0
        for row in rows {
            var prediction = bias
            for column in 0..<columns { prediction += features[row * columns + column] * weights[column] }
            let residual = prediction - targets[row]
            loss += residual * residual / 2
            for column in 0..<columns { gradient[column] += residual * features[row * columns + column] }
            gradientBias += residual
        }
        return (loss, [gradient, [gradientBias]])
    }

    func report(_ values: [[Double]]) -> [(String, String)] {
        let weights = values[0]
        let support = Set(truth.indices.filter { truth[$0] != 0 })
        let found = Set(weights.indices.filter { weights[$0] != 0 })
        return [("true support kept", "\(support.intersection(found).count) of \(support.count)"),
                ("false non-zeros", "\(found.subtracting(support).count)")]
    }
}
