import CBLAS
import RegulaABI

/// The services the host hands rules (`regula_services`, ABI 1.3): matrix products computed by OpenBLAS, loaded
/// with dlopen the first time anything here is asked for (`REGULA_BLAS_LIBRARY`, else `libopenblas.so.0`, else
/// `libopenblas.so`). Its bfloat16-to-bfloat16 product, `gemm_bf16_bf16`, is oneDNN's matmul instead, loaded
/// the same way on its own first call (`REGULA_DNNL_LIBRARY`, else `libdnnl.so.2`); so is `gemm_bf16`
/// (bfloat16 into float32) where OpenBLAS has no `cblas_sbgemm`.
///
/// Threads: OpenBLAS has one thread count for the whole process, used by every call. When the executor runs
/// several parameters' GEMMs at once from its own threads, it gives the BLAS 1 thread (``preferBLASThreads(_:)``),
/// so the calls do not fight over the same cores; when one parameter's GEMM runs alone, it gives it the
/// optimizer's threads.
package enum HostServices {
    /// The host's table, valid for the life of the process, and always there: when OpenBLAS cannot be loaded its
    /// GEMMs fail with ``blasLoadError``'s words (`gemm_bf16` then tries oneDNN). No entry is `nil`.
    package static var table: UnsafePointer<regula_services> { regula_blas_services() }

    /// Why OpenBLAS could not be loaded (the files tried and what to do), or `nil` when it is loaded.
    package static var blasLoadError: String? { regula_blas_load_error().map { String(cString: $0) } }

    /// The file OpenBLAS was loaded from, as dlopen was given it, or `nil` when it could not be loaded.
    package static var blasLibrary: String? { regula_blas_library().map { String(cString: $0) } }

    /// Asks that each BLAS call use `count` threads from now on, without loading OpenBLAS (applied when it
    /// loads, if it is not loaded yet). Called while no BLAS call runs.
    static func preferBLASThreads(_ count: Int) { regula_blas_prefer_threads(Int32(clamping: count)) }

    /// Whether OpenBLAS is loaded: true once anything has loaded it (a rule's first GEMM, or a question above
    /// that loads it). Asking never loads it.
    package static var isBLASLoaded: Bool { regula_blas_is_loaded() != 0 }

    /// How many threads each BLAS call may use, or 0 when OpenBLAS could not be loaded.
    package static var blasThreadCount: Int { Int(regula_blas_threads()) }

    /// Sets how many threads every BLAS call of the process may use from now on.
    ///
    /// Throws when `count` is not between 1 and `Int32.max`, or when OpenBLAS could not be loaded; nothing
    /// changes then.
    package static func setBLASThreadCount(_ count: Int) throws(HostServiceError) {
        guard (1...Int(Int32.max)).contains(count) else {
            throw HostServiceError(description: "a BLAS thread count of \(count); allowed: 1 or more")
        }
        if let blasLoadError { throw HostServiceError(description: blasLoadError) }
        _ = regula_blas_set_threads(Int32(count))
    }
}

/// Why a host service could not do what it was asked, in words.
package struct HostServiceError: Error, CustomStringConvertible {
    /// What was wrong and what is allowed.
    package let description: String
}
