import CRegulaShims
import Foundation

/// What a checkpoint's numbers must be for this optimizer's steps to have made them, checked on load (a file
/// whose checksums are right can still lie, since anyone can compute them) and, where a save could write
/// what a load would refuse, on save:
/// - every value of every parameter and state slot is finite, and no value of a slot its rule declares
///   non-negative is below 0;
/// - a slot that an option turns on is there while that option is on (saving writes it at its start value if
///   no step has made it yet, which is what the next step would do);
/// - at step 0 every slot still holds its start value.
extension Optimizer {
    /// `tensor` described for a message: `parameter "w"` or `state slot "exp_avg" of parameter "w" (rule "adam")`.
    func label(of tensor: CheckpointTensor, parameter: Parameter) -> String {
        guard let slot = tensor.slot else { return "parameter \(quoted(parameter.name))" }
        return "state slot \(quoted(slot.key)) of parameter \(quoted(parameter.name)) (rule \(quoted(slot.rule.name)))"
    }

    /// Why `bytes`, the values of `tensor`, could not have come from a step, or nil: a NaN or an infinity, or
    /// a negative value in a slot declared non-negative.
    func valueProblem(_ bytes: UnsafeRawBufferPointer, of tensor: CheckpointTensor, label: String) -> String? {
        let count = bytes.count / tensor.dtype.size
        guard let base = bytes.baseAddress else { return nil }
        // The C scans say whether any value is wrong; only then is the first one looked for, to name it.
        func first(_ isWrong: (Double) -> Bool) -> String {
            let index = (0..<count).first { isWrong(Self.element(base, tensor.dtype, $0)) } ?? 0
            return "\(label) (tensor \(quoted(tensor.name))) holds \(Self.element(base, tensor.dtype, index)) at element \(index)"
        }
        if regula_all_finite(base, count, tensor.dtype.abiBit) == 0 {
            return first { !$0.isFinite } + "; a checkpoint holds finite values only"
        }
        guard let slot = tensor.slot, slot.declared.isNonNegative, regula_all_non_negative(base, count, tensor.dtype.abiBit) == 0
        else { return nil }
        return first { $0 < 0 } + ", but rule \(quoted(slot.rule.name)) declares the slot non-negative: no step of it makes a value below 0"
    }

    /// Whether the slot behind `tensor` is turned on by an option that is on in `options`.
    func isSwitchedOn(_ tensor: CheckpointTensor, options: [String: Double]) -> (rule: Rule, option: String)? {
        guard let slot = tensor.slot, let option = slot.declared.enabledBy, (options[option] ?? 0) != 0 else { return nil }
        return (slot.rule, option)
    }

    /// The start value of the slot behind `tensor` in a group with `options`, or nil for a parameter's values.
    func startValue(of tensor: CheckpointTensor, options: [String: Double]) -> Double? {
        guard let slot = tensor.slot?.declared else { return nil }
        return slot.initialFrom.flatMap { options[$0] } ?? slot.initialValue
    }

    /// Why state saved at step 0 is not the state no step has touched, or nil: a slot whose values are not all
    /// its start value.
    func stepZeroProblem(_ bytes: UnsafeRawBufferPointer, of tensor: CheckpointTensor, start: Double, label: String) -> String? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count / tensor.dtype.size
        let started = tensor.dtype == .float32 ? Double(Float(start)) : start
        guard let index = (0..<count).first(where: { Self.element(base, tensor.dtype, $0) != started }) else { return nil }
        return "\(label) (tensor \(quoted(tensor.name))) holds \(Self.element(base, tensor.dtype, index)) at element \(index), but "
            + "the checkpoint says no step has run (step 0), when every slot still holds its start value \(started)"
    }

    /// The bytes of `count` values of `dtype`, each `value`.
    static func filled(_ value: Double, count: Int, dtype: DType) -> Data {
        switch dtype {
        case .float32: [Float](repeating: Float(value), count: count).withUnsafeBytes { Data($0) }
        case .float64: [Double](repeating: value, count: count).withUnsafeBytes { Data($0) }
        }
    }

    private static func element(_ base: UnsafeRawPointer, _ dtype: DType, _ index: Int) -> Double {
        switch dtype {
        case .float32: Double(base.loadUnaligned(fromByteOffset: index * 4, as: Float.self))
        case .float64: base.loadUnaligned(fromByteOffset: index * 8, as: Double.self)
        }
    }
}
