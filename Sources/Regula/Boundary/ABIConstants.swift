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
