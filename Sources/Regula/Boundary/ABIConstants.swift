// Boundary/ is calling into C: the contract's constants, a rule's C entry points (RuleKernel), libffi
// closures around Swift rules, the buffer plugins write their words into. It depends on no other folder's
// loading code; Loading/ builds on it (a loaded plugin's rules are RuleKernels), never the other way round.
import RegulaABI

/// The contract's constants as the host was compiled with them (C macros Swift cannot import directly).
enum RegulaABISymbols {
    /// `REGULA_ABI_MAJOR`.
    static let major = UInt32(REGULA_ABI_MAJOR)
    /// `REGULA_ABI_MINOR`.
    static let minor = UInt32(REGULA_ABI_MINOR)
    /// `REGULA_ENTRY_SYMBOL`.
    static let entry = "regula_plugin_entry"
    /// The status code for success.
    static let ok = regula_status(REGULA_OK)
}

extension DType {
    /// The `REGULA_DTYPE_*` bit.
    var abiBit: regula_dtype {
        switch self {
        case .float32: regula_dtype(REGULA_DTYPE_FLOAT32)
        case .float64: regula_dtype(REGULA_DTYPE_FLOAT64)
        }
    }
}
