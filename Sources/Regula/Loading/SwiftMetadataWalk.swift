/// Makes the Swift runtime read the metadata sections that every loaded image registered with it.
///
/// An image built by the Swift compiler (a plugin written in Swift, or a C target that SwiftPM linked with
/// `swiftc`) carries a constructor that registers its metadata sections (protocol conformances, type
/// metadata) with the runtime as it loads. Nothing reads them until the process's next dynamic cast or type
/// lookup by name, which then reads every image's sections. A damaged constructor registers sections of a
/// wrong size: loading succeeds, and the process faults later, in whatever cast comes next. A probe process
/// runs this walk after each file, so that such a file crashes the probe instead of the host.
enum SwiftMetadataWalk {
    /// A conformance lookup that fails, and so reads every conformance record of every image not read yet,
    /// then a lookup by mangled name of a type no image defines, which reads every image's type records.
    static func run() {
        _ = opaque() as? any NeverConformedMarker
        _ = _typeByName("6Regula25ProbeNoSuchTypeAnywhereV")
    }

    /// A value the optimizer cannot see through, so the cast above is made at run time.
    @inline(never)
    private static func opaque() -> Any { Unconforming() }

    private struct Unconforming {}
}

/// A protocol no type conforms to; only ``SwiftMetadataWalk`` asks about it.
protocol NeverConformedMarker {}
