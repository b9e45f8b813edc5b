/// An element type a parameter can have and a rule can support.
public enum DType: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    /// IEEE 754 binary32, Swift's `Float`.
    case float32
    /// IEEE 754 binary64, Swift's `Double`.
    case float64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32: MemoryLayout<Float>.stride
        case .float64: MemoryLayout<Double>.stride
        }
    }

    /// The name users write (`float32`, `float64`).
    public var description: String { rawValue }
}

/// The floating-point types a ``Parameter`` can hold: `Float` and `Double`.
public protocol ParameterElement: BinaryFloatingPoint, Sendable {
    /// The ``DType`` of this Swift type.
    static var dtype: DType { get }
}

extension Float: ParameterElement {
    /// ``DType/float32``.
    public static var dtype: DType { .float32 }
}

extension Double: ParameterElement {
    /// ``DType/float64``.
    public static var dtype: DType { .float64 }
}
