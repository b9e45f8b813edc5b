// clip_value — clamps every element of the update to [-clip_value, clip_value], like torch's
// clip_grad_value_, written in Swift: a SwiftPM dynamic library exporting the C entry point.
//
// Everything that crosses the boundary is a C type from regula.h; the descriptor is built once, on first
// call, in memory that lives as long as the process (a Swift plugin is never unloaded).
import RegulaABI

/// Clamps one block of type `T`.
private func clamp<T: BinaryFloatingPoint>(_ block: regula_block, as type: T.Type) {
    let d = block.update.assumingMemoryBound(to: T.self)
    let limit = T(block.hyperparameters[0])
    for i in 0..<block.length where !d[i].isNaN {
        d[i] = Swift.min(Swift.max(d[i], -limit), limit)
    }
}

/// The kernel, a plain C function pointer: a Swift closure that captures nothing.
private let kernel: regula_kernel_fn = { block, message in
    guard let block = block?.pointee else { return regula_status(REGULA_ERROR_INTERNAL) }
    switch block.dtype {
    case regula_dtype(REGULA_DTYPE_FLOAT32): clamp(block, as: Float.self)
    case regula_dtype(REGULA_DTYPE_FLOAT64): clamp(block, as: Double.self)
    default: return regula_status(REGULA_ERROR_UNSUPPORTED_DTYPE)
    }
    return regula_status(REGULA_OK)
}

/// A C string with static lifetime.
private func text(_ string: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(string.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// The plugin's description, built once (Swift initializes globals lazily and thread-safely).
nonisolated(unsafe) private let description: UnsafeMutablePointer<regula_plugin> = {
    let hyperparameter = UnsafeMutablePointer<regula_hyperparameter>.allocate(capacity: 1)
    hyperparameter.initialize(to: regula_hyperparameter(
        struct_size: UInt32(MemoryLayout<regula_hyperparameter>.size), name: text("clip_value"),
        doc: text("largest magnitude an update element may have"), type: UInt32(REGULA_HYPERPARAMETER_REAL),
        flags: 0, default_value: 1, minimum: 0, maximum: .infinity, choice_count: 0, choices: nil))
    var rule = regula_rule()
    rule.struct_size = UInt32(MemoryLayout<regula_rule>.size)
    rule.name = text("clip_value")
    rule.summary = text("clamps each update element to [-clip_value, clip_value] (written in Swift)")
    rule.version = 1
    rule.dtypes = regula_dtype(REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64)
    rule.flags = UInt32(REGULA_RULE_NEVER_FAILS)
    rule.hyperparameter_count = 1
    rule.hyperparameters = UnsafePointer(hyperparameter)
    rule.kernel = kernel
    let rules = UnsafeMutablePointer<regula_rule>.allocate(capacity: 1)
    rules.initialize(to: rule)
    // Fields assigned one by one: a later minor version appends fields, which a memberwise initializer
    // would then require; fields left out read as zero.
    var plugin = regula_plugin()
    plugin.abi_major = UInt32(REGULA_ABI_MAJOR)
    plugin.abi_minor = UInt32(REGULA_ABI_MINOR)
    plugin.struct_size = UInt32(MemoryLayout<regula_plugin>.size)
    plugin.rule_count = 1
    plugin.rules = UnsafePointer(rules)
    plugin.toolchain = regula_swift_toolchain()
    let described = UnsafeMutablePointer<regula_plugin>.allocate(capacity: 1)
    described.initialize(to: plugin)
    return described
}()

/// The one symbol a Regula plugin exports.
@_cdecl("regula_plugin_entry")
public func regulaPluginEntry() -> UnsafePointer<regula_plugin> {
    UnsafePointer(description)
}
