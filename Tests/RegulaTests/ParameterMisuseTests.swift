import Foundation
import Regula
import Testing

/// Reading or writing a parameter the wrong way throws a typed error that names it, and changes nothing.
@Suite struct ParameterMisuseTests {
    @Test func gradientOfAnotherElementTypeIsRefusedAndTheOldOneStays() throws {
        let w = Parameter("w", values: [Float](repeating: 1, count: 3))
        try w.setGradient([Float](repeating: 0.5, count: 3))
        #expect(throws: OptimizerError.wrongElementType(parameter: "w", holds: .float32, used: .float64)) {
            try w.setGradient([0.1, 0.2, 0.3])
        }
        #expect(try w.gradient(as: Float.self) == [0.5, 0.5, 0.5])
    }

    @Test func readingAsAnotherElementTypeSaysWhichTypeTheParameterTakes() throws {
        let w = Parameter("weights", values: [Float](repeating: 1, count: 2))
        do {
            _ = try w.values(as: Double.self)
            Issue.record("values(as: Double.self) on a float32 parameter returned")
        } catch {
            #expect(error == .wrongElementType(parameter: "weights", holds: .float32, used: .float64))
            #expect("\(error)" == "parameter \"weights\" holds float32 values, so its values and gradient are [Float], not [Double]")
        }
        let b = Parameter("b", values: [1.0])
        #expect(throws: OptimizerError.wrongElementType(parameter: "b", holds: .float64, used: .float32)) {
            try b.gradient(as: Float.self)
        }
        #expect(try b.values(as: Double.self) == [1.0])
    }

    @Test func wrappedGradientOfAnotherTypeOrOverlappingTheValuesIsRefused() throws {
        let memory = UnsafeMutableBufferPointer<Float>.allocate(capacity: 8)
        defer { memory.deallocate() }
        memory.initialize(repeating: 1)
        let values = UnsafeMutableBufferPointer(rebasing: memory[0..<4])
        let w = try Parameter("w", wrapping: values)
        let own = [Float](repeating: 0.25, count: 4)
        try w.setGradient(own)
        // Elements 2..<6 of the same memory: the last two are the parameter's values 2 and 3.
        let overlapping = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(memory)[2..<6])
        #expect(throws: OptimizerError.gradientOverlapsValues(parameter: "w")) { try w.setGradient(wrapping: overlapping) }
        let doubles = UnsafeMutableBufferPointer<Double>.allocate(capacity: 4)
        defer { doubles.deallocate() }
        doubles.initialize(repeating: 0)
        #expect(throws: OptimizerError.wrongElementType(parameter: "w", holds: .float32, used: .float64)) {
            try w.setGradient(wrapping: UnsafeBufferPointer(doubles))
        }
        #expect(try w.gradient(as: Float.self) == own)
        // Memory just after the values does not overlap them.
        try w.setGradient(wrapping: UnsafeBufferPointer(rebasing: UnsafeBufferPointer(memory)[4..<8]))
        #expect(try w.gradient(as: Float.self) == [1, 1, 1, 1])
    }
}
