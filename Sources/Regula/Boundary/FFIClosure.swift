import CFFI

/// A Swift closure turned into a real C function pointer with libffi (`ffi_closure_alloc` +
/// `ffi_prep_closure_loc`), so rules written in Swift are called exactly as loaded ones are.
///
/// The C function takes `argumentCount` pointer arguments and returns `int32_t`. The closure receives libffi's
/// argument array: entry `i` points at the storage of argument `i`. The cif, its type array and the closure
/// live as long as this object; the function pointer must not be called after it is gone.
final class FFIClosure: @unchecked Sendable {
    typealias Body = (UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Int32

    /// The callable C function pointer.
    let code: UnsafeMutableRawPointer
    private let body: Body
    private let cif: UnsafeMutablePointer<ffi_cif>
    private let argumentTypes: UnsafeMutablePointer<UnsafeMutablePointer<ffi_type>?>
    private let closure: UnsafeMutablePointer<ffi_closure>

    /// Builds the closure, or returns `nil` when libffi cannot (no executable memory).
    init?(argumentCount: Int, body: @escaping Body) {
        self.body = body
        cif = .allocate(capacity: 1)
        argumentTypes = .allocate(capacity: argumentCount)
        argumentTypes.initialize(repeating: regula_ffi_type_pointer(), count: argumentCount)
        var code: UnsafeMutableRawPointer?
        let allocated = ffi_closure_alloc(MemoryLayout<ffi_closure>.size, &code)
        guard let allocated, let code,
              ffi_prep_cif(cif, regula_ffi_default_abi(), UInt32(argumentCount), regula_ffi_type_sint32(),
                           argumentTypes) == FFI_OK
        else {
            if let allocated { ffi_closure_free(allocated) }
            cif.deallocate()
            argumentTypes.deallocate()
            return nil
        }
        self.code = code
        closure = allocated.assumingMemoryBound(to: ffi_closure.self)
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard ffi_prep_closure_loc(closure, cif, { _, result, arguments, context in
            let this = Unmanaged<FFIClosure>.fromOpaque(context!).takeUnretainedValue()
            // libffi widens integer results narrower than a register to ffi_sarg.
            result!.assumingMemoryBound(to: ffi_sarg.self).pointee = ffi_sarg(this.body(arguments!))
        }, context, code) == FFI_OK else {
            return nil
        }
    }

    deinit {
        ffi_closure_free(closure)
        cif.deallocate()
        argumentTypes.deallocate()
    }

    /// The value of pointer argument `index` inside libffi's argument array.
    static func argument<T>(_ index: Int, of arguments: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                            as type: T.Type) -> T {
        arguments[index]!.load(as: T.self)
    }
}
