import Foundation
@testable import RegulaCLI
import Testing

/// The network `regula train` trains: its hand-written backward pass against finite differences.
@Suite struct PerceptronTests {
    /// 50 rows of 64 random features, five of each digit: 40 trained on, 10 held out.
    static let network: Perceptron = {
        var random = SeededRandom(seed: 3)
        let labels = (0..<50).map { Double($0 % 10) }
        let features = (0..<(50 * 64)).map { _ in random.normal() }
        return Perceptron(data: Dataset(name: "random", standardizing: features, labels: labels, columns: 64))
    }()

    @Test func splitHoldsOutAFifthOfEachDigit() {
        let network = Self.network
        #expect(network.rowCount == 40 && network.heldOut.count == 10)
        #expect(Set(network.heldOut.map { network.data.labels[$0] }).count == 10)
        #expect(Set(network.heldOut).isDisjoint(with: network.training))
        #expect(network.parameters.map(\.shape) == [[64, 128], [128], [128, 10], [10]])
    }

    @Test func backwardAgreesWithCentralDifferences() {
        let network = Self.network
        // Random biases too, so that every gradient is exercised away from zero.
        var random = SeededRandom(seed: 11)
        let values = network.parameters.map { $0.initialValues.map { $0 + 0.1 * random.normal() } }
        let rows = 0..<network.rowCount
        let gradients = network.evaluate(values, rows: rows).gradients
        let step = 1e-6
        var checked = 0
        for (index, value) in values.enumerated() {
            for element in Set((0..<25).map { _ in Int(random.uniform() * Double(value.count)) }) {
                var up = values, down = values
                up[index][element] += step
                down[index][element] -= step
                let difference = (network.evaluate(up, rows: rows).loss - network.evaluate(down, rows: rows).loss) / (2 * step)
                #expect(abs(difference - gradients[index][element]) <= 1e-6 * max(1, abs(difference)),
                        "\(network.parameters[index].name)[\(element)]: backward \(gradients[index][element]), differences \(difference)")
                checked += 1
            }
        }
        #expect(checked > 60)
    }
}
