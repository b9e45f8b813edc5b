import Foundation

/// A multilayer perceptron on the digits data: 64 inputs, 128 ReLU units, 10 classes, mean softmax
/// cross-entropy, trained on four fifths of each class and tested on the rest (a stratified split drawn with a
/// fixed seed).
struct Perceptron: TrainingProblem {
    let data: Dataset
    let hidden = 128, classes = 10
    /// Rows of `data` trained on, and rows held out.
    let training: [Int], heldOut: [Int]
    let parameters: [ModelParameter]

    var title: String { "multilayer perceptron (64 → 128 → 10) on \(data.name)" }
    var rowCount: Int { training.count }
    var standardEpochs: Int { 30 }
    /// One column of the table per configuration: adamw alone, and muon on the two weight matrices beside
    /// adamw on the biases, the way Muon is used (a chain per group).
    var runs: [TrainingRun]? {
        let adamw: [String: Double] = ["lr": 0.01, "weight_decay": 0.01]
        return [TrainingRun(label: "adamw", rules: ["adamw"], options: adamw),
                TrainingRun(label: "muon", rules: ["adamw"], options: adamw,
                            weightChain: (["muon"], ["lr": 0.1, "weight_decay": 0.01]))]
    }

    init(data: Dataset, seed: UInt64 = 7) {
        var random = SeededRandom(seed: seed)
        var training: [Int] = [], heldOut: [Int] = []
        for label in 0..<10 {
            let rows = random.shuffled(data.labels.indices.filter { data.labels[$0] == Double(label) })
            heldOut += rows.prefix(rows.count / 5)
            training += rows.dropFirst(rows.count / 5)
        }
        // Uniform starting weights with He's variance (2 / fan-in) for the ReLU layer, Glorot's for the output.
        func layer(_ name: String, _ rows: Int, _ columns: Int, scale: Double) -> [ModelParameter] {
            [ModelParameter(name: name + ".weight", shape: [rows, columns], isPenalized: true,
                            initialValues: (0..<(rows * columns)).map { _ in (2 * random.uniform() - 1) * scale }),
             ModelParameter(name: name + ".bias", shape: [columns], isPenalized: false, initialValues: [Double](repeating: 0, count: columns))]
        }
        parameters = layer("hidden", data.columns, hidden, scale: (6 / Double(data.columns)).squareRoot())
            + layer("output", hidden, classes, scale: (6 / Double(hidden + classes)).squareRoot())
        self.data = data
        self.training = training.sorted()
        self.heldOut = heldOut.sorted()
    }

    /// The hidden units (after ReLU) and the logits of `data` row `row`, through plain loops over buffers
    /// (nested arrays are slow in a debug build).
    private func forward(_ v: [UnsafeBufferPointer<Double>], row: Int, x: UnsafeBufferPointer<Double>,
                         hiddenUnits h: UnsafeMutableBufferPointer<Double>, logits: UnsafeMutableBufferPointer<Double>) {
        let inputs = data.columns
        for unit in 0..<hidden { h[unit] = v[1][unit] }
        for input in 0..<inputs {
            let value = x[row * inputs + input], weights = v[0].baseAddress! + input * hidden
            for unit in 0..<hidden { h[unit] += value * weights[unit] }
        }
        for unit in 0..<hidden { h[unit] = max(h[unit], 0) }
        for label in 0..<classes { logits[label] = v[3][label] }
        for unit in 0..<hidden where h[unit] > 0 {
            let weights = v[2].baseAddress! + unit * classes
            for label in 0..<classes { logits[label] += h[unit] * weights[label] }
        }
    }

    /// `body` with buffers over `values` and the features, and scratch for one row's hidden units and logits.
    private func withBuffers<T>(_ values: [[Double]], _ body: ([UnsafeBufferPointer<Double>], UnsafeBufferPointer<Double>,
                                                                UnsafeMutableBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> T) -> T {
        let copies = values.map { UnsafeMutableBufferPointer<Double>.allocate(capacity: $0.count) }
        let scratch = UnsafeMutableBufferPointer<Double>.allocate(capacity: hidden + classes)
        defer { copies.forEach { $0.deallocate() }; scratch.deallocate() }
        for (copy, value) in zip(copies, values) { _ = copy.initialize(from: value) }
        return data.features.withUnsafeBufferPointer { x in
            body(copies.map { UnsafeBufferPointer($0) }, x, UnsafeMutableBufferPointer(rebasing: scratch[..<hidden]),
                 UnsafeMutableBufferPointer(rebasing: scratch[hidden...]))
        }
    }

    func evaluate(_ values: [[Double]], rows: Range<Int>) -> (loss: Double, gradients: [[Double]]) {
        let g = values.map { UnsafeMutableBufferPointer<Double>.allocate(capacity: $0.count) }
        let hiddenGradient = UnsafeMutableBufferPointer<Double>.allocate(capacity: hidden)
        defer { g.forEach { $0.deallocate() }; hiddenGradient.deallocate() }
        g.forEach { $0.initialize(repeating: 0) }
        let loss = withBuffers(values) { v, x, h, logits in
            var loss = 0.0
            for row in rows.map({ training[$0] }) {
                forward(v, row: row, x: x, hiddenUnits: h, logits: logits)
                let label = Int(data.labels[row]), largest = logits.max()!
                let total = logits.reduce(0) { $0 + exp($1 - largest) }
                loss += largest + log(total) - logits[label]
                // d loss / d logit = softmax − one-hot.
                for index in 0..<classes { logits[index] = exp(logits[index] - largest) / total - (index == label ? 1 : 0) }
                for index in 0..<classes { g[3][index] += logits[index] }
                for unit in 0..<hidden {
                    let weights = v[2].baseAddress! + unit * classes, gradient = g[2].baseAddress! + unit * classes
                    var sum = 0.0
                    for index in 0..<classes {
                        gradient[index] += h[unit] * logits[index]
                        sum += weights[index] * logits[index]
                    }
                    hiddenGradient[unit] = h[unit] > 0 ? sum : 0
                    g[1][unit] += hiddenGradient[unit]
                }
                for input in 0..<data.columns {
                    let value = x[row * data.columns + input], gradient = g[0].baseAddress! + input * hidden
                    for unit in 0..<hidden { gradient[unit] += value * hiddenGradient[unit] }
                }
            }
            return loss
        }
        return (loss, g.map { Array($0) })
    }

    /// The fraction of `rows` whose largest logit is their label.
    func accuracy(_ values: [[Double]], on rows: [Int]) -> Double {
        let correct = withBuffers(values) { v, x, h, logits in
            rows.filter { row in
                forward(v, row: row, x: x, hiddenUnits: h, logits: logits)
                return logits.indices.max { logits[$0] < logits[$1] } == Int(data.labels[row])
            }.count
        }
        return Double(correct) / Double(rows.count)
    }

    func report(_ values: [[Double]]) -> [(String, String)] {
        [("held-out accuracy", String(format: "%.1f %% of %d", 100 * accuracy(values, on: heldOut), heldOut.count)),
         ("training accuracy", String(format: "%.1f %% of %d", 100 * accuracy(values, on: training), training.count))]
    }
}
