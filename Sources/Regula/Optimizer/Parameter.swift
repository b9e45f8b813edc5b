import RegulaABI

/// A tensor the optimizer updates: float32 or float64 values in row-major order, their shape and, when it has
/// one, their gradient.
///
/// A parameter without a shape is flat (one dimension). Rules see the shape of the parameter they step
/// (`regula_block.shape`), so a rule that treats a matrix as a matrix (`muon`) can tell its rows from its columns.
///
/// A parameter either owns its storage (``init(_:values:)``) or wraps memory its caller owns
/// (``init(_:wrapping:shape:gradient:)``), so a tensor library can hand its buffers over without a copy. A class:
/// the optimizer keys its state by the parameter's identity, as torch does.
///
/// Reading or writing with the wrong element type (`values(as: Double.self)` on a float32 parameter) throws
/// ``OptimizerError/wrongElementType(parameter:holds:used:)`` and changes nothing.
public final class Parameter: @unchecked Sendable {
    /// The parameter's name, used in messages and checkpoints.
    public let name: String
    /// The element type.
    public let dtype: DType
    /// Number of elements.
    public let count: Int
    /// The sizes of the dimensions, row-major (the last varies fastest); they multiply to ``count``. `[count]`
    /// for a flat parameter.
    public let shape: [Int]
    /// The shape kernels see, at a fixed address: the parameter's own, or for a share of a larger tensor
    /// (a distributed optimizer's), the whole tensor's.
    private(set) var shapeCell: UnsafeMutablePointer<Int>
    /// The number of sizes at ``shapeCell``.
    private(set) var shapeCellRank: Int
    /// Alignment of the memory a parameter allocates: one cache line.
    static let alignment = 64
    /// Start of the values.
    let storage: UnsafeMutableRawPointer
    private let ownsStorage: Bool
    /// Where the start of the gradient is kept (nil when the parameter has none this step): a fixed address,
    /// so the optimizer's step plan reads it without touching this object.
    let gradientCell: UnsafeMutablePointer<UnsafeRawPointer?> = {
        let cell = UnsafeMutablePointer<UnsafeRawPointer?>.allocate(capacity: 1)
        cell.initialize(to: nil)
        return cell
    }()
    /// Start of the gradient, or nil when the parameter has none this step.
    private(set) var gradientStorage: UnsafeRawPointer? {
        get { gradientCell.pointee }
        set { gradientCell.pointee = newValue }
    }
    /// Host-owned gradient memory, allocated on the first ``setGradient(_:)``.
    private var ownedGradient: UnsafeMutableRawPointer?

    /// A flat parameter that owns a copy of `values` and has no gradient yet.
    public convenience init<T: ParameterElement>(_ name: String, values: [T]) {
        self.init(name, owning: values, shape: [values.count])
    }

    /// A parameter of `shape` (row-major) that owns a copy of `values` and has no gradient yet.
    /// - Throws: ``OptimizerError/shapeRefused(parameter:shape:count:reason:)`` when the sizes do not multiply
    ///   to the number of values, a size is negative, or there are no dimensions or more than ``maximumRank``.
    public convenience init<T: ParameterElement>(_ name: String, values: [T], shape: [Int]) throws(OptimizerError) {
        try Self.check(shape, count: values.count, name: name)
        self.init(name, owning: values, shape: shape)
    }

    /// The most dimensions a parameter may have (`REGULA_MAX_RANK`).
    public static let maximumRank = Int(REGULA_MAX_RANK)

    private init<T: ParameterElement>(_ name: String, owning values: [T], shape: [Int]) {
        self.name = name
        dtype = T.dtype
        count = values.count
        self.shape = shape
        shapeCell = Self.cell(holding: shape)
        shapeCellRank = shape.count
        // Cache-line aligned, as the gradient and the state slots are: a block then never straddles one
        // more line than it must, and vector loads never split across lines.
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(values.count, 1) * MemoryLayout<T>.stride,
                                                   alignment: Parameter.alignment)
        storage.initializeMemory(as: T.self, from: values, count: values.count)
        ownsStorage = true
    }

    /// A parameter over memory the caller owns and keeps alive for as long as the parameter is used.
    ///
    /// The optimizer writes updated values into `values` in place. `gradient`, if given, is read at each
    /// step and must have as many elements as `values`.
    /// `shape`, when given, is checked as ``init(_:values:shape:)`` checks it; nil makes the parameter flat.
    public convenience init<T: ParameterElement>(_ name: String, wrapping values: UnsafeMutableBufferPointer<T>,
                                                 shape: [Int]? = nil, gradient: UnsafeBufferPointer<T>? = nil) throws(OptimizerError) {
        // Checked before any memory of the parameter exists, so a refused shape leaves nothing behind.
        if let shape { try Self.check(shape, count: values.count, name: name) }
        try self.init(name, wrappingChecked: values, shape: shape, gradient: gradient)
    }

    private init<T: ParameterElement>(_ name: String, wrappingChecked values: UnsafeMutableBufferPointer<T>,
                                      shape: [Int]?, gradient: UnsafeBufferPointer<T>?) throws(OptimizerError) {
        self.name = name
        dtype = T.dtype
        count = values.count
        self.shape = shape ?? [values.count]
        shapeCell = Self.cell(holding: self.shape)
        shapeCellRank = self.shape.count
        storage = UnsafeMutableRawPointer(values.baseAddress ?? UnsafeMutablePointer<T>.allocate(capacity: 1))
        ownsStorage = values.baseAddress == nil
        if let gradient { try setGradient(wrapping: gradient) }
    }

    deinit {
        shapeCell.deallocate()
        if ownsStorage { storage.deallocate() }
        ownedGradient?.deallocate()
        gradientCell.deallocate()
    }

    /// Whether the parameter has a gradient for the next step. Without one, a step skips it and leaves its
    /// state untouched.
    public var hasGradient: Bool { gradientStorage != nil }

    /// A copy of the current values.
    /// - Throws: ``OptimizerError/wrongElementType(parameter:holds:used:)`` when `T` is not the parameter's
    ///   element type.
    public func values<T: ParameterElement>(as type: T.Type) throws(OptimizerError) -> [T] {
        try checkElementType(T.self)
        return Array(UnsafeBufferPointer(start: storage.assumingMemoryBound(to: T.self), count: count))
    }

    /// A copy of the current gradient, or nil when there is none.
    /// - Throws: ``OptimizerError/wrongElementType(parameter:holds:used:)`` when `T` is not the parameter's
    ///   element type.
    public func gradient<T: ParameterElement>(as type: T.Type) throws(OptimizerError) -> [T]? {
        try checkElementType(T.self)
        return gradientStorage.map { Array(UnsafeBufferPointer(start: $0.assumingMemoryBound(to: T.self), count: count)) }
    }

    /// Copies `gradient` into storage the parameter owns.
    /// - Throws: ``OptimizerError/wrongElementType(parameter:holds:used:)`` or
    ///   ``OptimizerError/gradientLength(parameter:expected:got:)``; the old gradient stays.
    public func setGradient<T: ParameterElement>(_ gradient: [T]) throws(OptimizerError) {
        try checkElementType(T.self)
        guard gradient.count == count else {
            throw .gradientLength(parameter: name, expected: count, got: gradient.count)
        }
        let target = ownedGradient ?? UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * dtype.size,
                                                                      alignment: Parameter.alignment)
        ownedGradient = target
        gradient.withUnsafeBytes { target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        gradientStorage = UnsafeRawPointer(target)
    }

    /// Reads the gradient from memory the caller owns, from now on, without copying it.
    /// - Throws: ``OptimizerError/wrongElementType(parameter:holds:used:)``,
    ///   ``OptimizerError/gradientLength(parameter:expected:got:)``, or
    ///   ``OptimizerError/gradientOverlapsValues(parameter:)`` when the memory overlaps the parameter's values;
    ///   the old gradient stays.
    public func setGradient<T: ParameterElement>(wrapping gradient: UnsafeBufferPointer<T>) throws(OptimizerError) {
        try checkElementType(T.self)
        guard gradient.count == count else {
            throw .gradientLength(parameter: name, expected: count, got: gradient.count)
        }
        if let start = gradient.baseAddress, count > 0 {
            let (g, p) = (UInt(bitPattern: start), UInt(bitPattern: storage))
            let bytes = UInt(count * dtype.size)
            guard g + bytes <= p || p + bytes <= g else { throw .gradientOverlapsValues(parameter: name) }
        }
        gradientStorage = gradient.baseAddress.map(UnsafeRawPointer.init)
            ?? UnsafeRawPointer(ownedGradient ?? storage)
    }

    /// Removes the gradient, so the next step skips this parameter (torch's `grad = None`).
    public func clearGradient() { gradientStorage = nil }

    /// Where this parameter lies in a larger one it is a share of, for a distributed optimizer in which each
    /// process steps a contiguous share of every tensor: rules then see `block->offset` and
    /// `block->parameter_length` as they would for the whole tensor. Nil for a parameter that is whole.
    var share: (offset: Int, wholeCount: Int)? { shareStorage }
    private var shareStorage: (offset: Int, wholeCount: Int)?

    /// Makes this parameter the share at `offset` of a tensor of `wholeShape`, which kernels then see.
    func becomeShare(offset: Int, of wholeShape: [Int]) {
        let wholeCount = wholeShape.reduce(1, *)
        precondition(offset >= 0 && offset + count <= wholeCount,
                     "a share of \(count) elements at \(offset) does not fit in \(wholeCount)")
        shareStorage = (offset, wholeCount)
        shapeCell.deallocate()
        shapeCell = Self.cell(holding: wholeShape)
        shapeCellRank = wholeShape.count
    }

    /// Why `shape` cannot be the shape of `count` elements, thrown naming the parameter.
    static func check(_ shape: [Int], count: Int, name: String) throws(OptimizerError) {
        func refuse(_ reason: String) -> OptimizerError {
            .shapeRefused(parameter: name, shape: shape, count: count, reason: reason)
        }
        guard !shape.isEmpty else { throw refuse("a shape needs at least one dimension; a single number is [1]") }
        guard shape.count <= maximumRank else { throw refuse("at most \(maximumRank) dimensions are allowed") }
        if let negative = shape.first(where: { $0 < 0 }) { throw refuse("a size cannot be negative (\(negative))") }
        var product = 1
        for size in shape {
            let (next, overflow) = product.multipliedReportingOverflow(by: size)
            guard !overflow else { throw refuse("the sizes multiply past \(Int.max)") }
            product = next
        }
        guard product == count else {
            throw refuse("its sizes multiply to \(product), but the parameter has \(count) value\(count == 1 ? "" : "s")")
        }
    }

    /// `shape` copied to memory of its own, for the step plan to hand to kernels.
    private static func cell(holding shape: [Int]) -> UnsafeMutablePointer<Int> {
        let cell = UnsafeMutablePointer<Int>.allocate(capacity: max(shape.count, 1))
        cell.initialize(from: shape, count: shape.count)
        return cell
    }

    private func checkElementType<T: ParameterElement>(_: T.Type) throws(OptimizerError) {
        guard T.dtype == dtype else { throw .wrongElementType(parameter: name, holds: dtype, used: T.dtype) }
    }
}

extension DType {
    /// The Swift type of the elements (`Float`, `Double`), for messages.
    var swiftName: String {
        switch self {
        case .float32: "Float"
        case .float64: "Double"
        }
    }
}
