import Foundation

/// The flat values of one recorded tensor (initial values or a gradient), in the spec's element type.
public enum ReplayTensor: Sendable, Equatable {
    /// float32 values.
    case float32([Float])
    /// float64 values.
    case float64([Double])

    /// The element type.
    public var dtype: DType {
        switch self {
        case .float32: .float32
        case .float64: .float64
        }
    }

    /// Number of elements.
    public var count: Int {
        switch self {
        case .float32(let values): values.count
        case .float64(let values): values.count
        }
    }

    /// The values as `Double`, exactly.
    public var doubles: [Double] {
        switch self {
        case .float32(let values): values.map(Double.init)
        case .float64(let values): values
        }
    }

    /// Numbers read from JSON, rounded to `dtype` the way torch rounds a Python float: to nearest, ties to even.
    /// - Throws: ``ReplayError`` naming `place` and the element when a number is out of `dtype`'s range (it
    ///   would become an infinity).
    init(_ numbers: [Double], as dtype: DType, at place: String) throws(ReplayError) {
        switch dtype {
        case .float64:
            if let index = numbers.firstIndex(where: { !$0.isFinite }) { throw Self.outOfRange(numbers[index], dtype, "\(place)[\(index)]") }
            self = .float64(numbers)
        case .float32:
            let values = numbers.map(Float.init)
            if let index = values.firstIndex(where: { !$0.isFinite }) { throw Self.outOfRange(numbers[index], dtype, "\(place)[\(index)]") }
            self = .float32(values)
        }
    }

    /// A tensor read from a safetensors file: its raw little-endian bytes, flattened in row-major order.
    /// - Throws: ``ReplayError`` naming `place` when a value is not finite.
    init(bytes: Data, as dtype: DType, at place: String) throws(ReplayError) {
        switch dtype {
        case .float32: self = .float32(Self.elements(of: bytes))
        case .float64: self = .float64(Self.elements(of: bytes))
        }
        let nonFinite: Int? = switch self {
        case .float32(let values): values.firstIndex { !$0.isFinite }
        case .float64(let values): values.firstIndex { !$0.isFinite }
        }
        if let index = nonFinite {
            throw ReplayError("\(place): element \(index) is \(doubles[index]); a spec holds finite numbers only")
        }
    }

    private static func elements<T: ParameterElement>(of bytes: Data) -> [T] {
        let count = bytes.count / MemoryLayout<T>.stride
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            initialized = bytes.copyBytes(to: buffer) / MemoryLayout<T>.stride
        }
    }

    private static func outOfRange(_ value: Double, _ dtype: DType, _ place: String) -> ReplayError {
        let largest = dtype == .float32 ? "\(Float.greatestFiniteMagnitude)" : "\(Double.greatestFiniteMagnitude)"
        return ReplayError("\(place) is \(value.isFinite ? "\(value), " : "")beyond \(dtype)'s range (largest magnitude \(largest)); "
                           + "it would become an infinity")
    }
}
