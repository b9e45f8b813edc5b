#if canImport(Glibc)
import Glibc
#endif

/// The sanitizer the running tests were built with (`swift test --sanitize=address` or `=thread`, as
/// `.ci/sanitizers` runs them), found by its runtime's entry symbol.
public enum Sanitizer {
    /// `"address"`, `"thread"`, or nil for an ordinary build.
    public static let active: String? = {
        let everything = UnsafeMutableRawPointer(bitPattern: 0)    // RTLD_DEFAULT
        if dlsym(everything, "__asan_init") != nil { return "address" }
        if dlsym(everything, "__tsan_init") != nil { return "thread" }
        return nil
    }()

    /// Why a test that crashes a plugin on purpose is not run under a sanitizer: the sanitizer catches the
    /// signal first and reports it as an error of its own, so the crash is not seen as the test expects.
    public static let catchesDeliberateCrashes = "deliberately crashes a plugin; under a sanitizer the sanitizer catches the signal first"

    /// Why the `mpirun` jobs are not run under a sanitizer: Open MPI keeps allocations of its own, in libmpi and
    /// in the components it loads and unloads, to the end of the process, and LeakSanitizer reports them from
    /// every rank; nothing of Regula's is among them.
    public static let openMPIKeepsItsAllocations = "Open MPI keeps its own allocations to the end of each rank, which LeakSanitizer reports"

    /// Why a test that builds a separate package against Regula is not run under a sanitizer: that package
    /// is built without it and cannot load the sanitizer-built rule libraries.
    public static let separateBuildCannotLoadPlugins = "builds a package without the sanitizer, which cannot load the sanitizer-built rules"
}
