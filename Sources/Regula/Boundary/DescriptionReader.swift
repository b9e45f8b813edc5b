import RegulaABI

/// Reads what a plugin's entry returned into Swift ``Rule`` values, trusting nothing.
///
/// Order matters: the version is read before any other field, and a struct is read only as far as the size
/// the plugin declares for it, so a plugin built against an older minor version loads and one built for
/// another major version is refused before its layout is assumed. Arrays are stepped through by their first
/// element's `struct_size`, the stride the plugin was compiled with.
struct DescriptionReader {
    /// Upper bounds that catch garbage counts before the host walks off into memory.
    static let maximumRules = 1024
    static let maximumHyperparameters = 64
    static let maximumSlots = 64
    static let maximumReductions = 16
    static let maximumStructSize = 4096

    let object: SharedObject

    /// The rules the plugin describes, or the reason it breaks the contract.
    func rules(from described: UnsafePointer<regula_plugin>?) throws(PluginLoadError) -> [Rule] {
        guard let described else { throw malformed("\(RegulaABISymbols.entry)() returned NULL") }
        let raw = UnsafeRawPointer(described)
        let major = raw.load(fromByteOffset: 0, as: UInt32.self)
        let minor = raw.load(fromByteOffset: 4, as: UInt32.self)
        guard major == RegulaABISymbols.major else {
            throw PluginLoadError(path: object.path, reason: .incompatibleABI(pluginMajor: major, pluginMinor: minor))
        }
        let size = Int(raw.load(fromByteOffset: 8, as: UInt32.self))
        // ABI 1.0 plugins end before `toolchain` (24 bytes); the copy then reads it as NULL.
        let plugin: regula_plugin = try versioned(raw, size: size, minimum: 24, what: "regula_plugin")
        if let toolchain = plugin.toolchain.map({ String(cString: $0) }) {
            let ours = String(cString: regula_swift_toolchain())
            guard toolchain == ours else {
                throw malformed("it was built with \(toolchain), but this host with \(ours); a Swift plugin must be "
                                + "built by the same Swift toolchain as the host (Swift's ABI is not stable on Linux)")
            }
        }
        let count = Int(plugin.rule_count)
        guard (1...Self.maximumRules).contains(count) else {
            throw malformed("rule_count is \(count); allowed: 1 to \(Self.maximumRules)")
        }
        guard let first = plugin.rules else { throw malformed("rule_count is \(count) but rules is NULL") }
        let base = UnsafeRawPointer(first)
        let stride = try arrayStride(base, what: "regula_rule")
        return try (0..<count).map { index throws(PluginLoadError) in
            try rule(at: base + index * stride, stride: stride, index: index)
        }
    }

    private func rule(at address: UnsafeRawPointer, stride: Int, index: Int) throws(PluginLoadError) -> Rule {
        let declared: regula_rule = try element(address, stride: stride, what: "rules[\(index)]")
        guard let namePointer = declared.name else { throw malformed("rules[\(index)] has a NULL name") }
        let name = String(cString: namePointer)
        let label = "rule \(quoted(name)) (rules[\(index)])"
        guard let kernel = declared.kernel else { throw malformed("\(label) has no kernel") }
        let known = UInt32(REGULA_RULE_NEVER_FAILS)
        guard declared.flags & ~known == 0 else {
            throw malformed("\(label) sets unknown flags \(declared.flags & ~known); ABI \(RegulaABISymbols.major).\(RegulaABISymbols.minor) defines only REGULA_RULE_NEVER_FAILS (0x1)")
        }
        let dtypes = DType.allCases.filter { declared.dtypes & $0.abiBit != 0 }
        let hyperparameters = try elements(
            declared.hyperparameters, count: declared.hyperparameter_count, limit: Self.maximumHyperparameters,
            what: "hyperparameters of \(label)", read: hyperparameter)
        let slots = try elements(
            declared.slots, count: declared.slot_count, limit: Self.maximumSlots,
            what: "slots of \(label)", read: slot)
        let reductions = try elements(
            declared.reductions, count: declared.reduction_count, limit: Self.maximumReductions,
            what: "reductions of \(label)", read: reduction)
        return Rule(
            name: name, summary: declared.summary.map { String(cString: $0) } ?? "",
            version: Int(declared.version), dtypes: dtypes, hyperparameters: hyperparameters,
            stateSlots: slots, reductions: reductions, neverFails: declared.flags & known != 0,
            origin: .sharedObject(path: object.path),
            kernel: RuleKernel(kernel: kernel, check: declared.check, reduce: declared.reduce,
                               ruleData: declared.rule_data, owner: object))
    }

    private func hyperparameter(_ declared: regula_hyperparameter, label: String) throws(PluginLoadError) -> Hyperparameter {
        guard let namePointer = declared.name else { throw malformed("\(label) has a NULL name") }
        let kind: Hyperparameter.Kind
        switch declared.type {
        case UInt32(REGULA_HYPERPARAMETER_REAL): kind = .real
        case UInt32(REGULA_HYPERPARAMETER_INTEGER): kind = .integer
        case UInt32(REGULA_HYPERPARAMETER_BOOLEAN): kind = .boolean
        default: throw malformed("\(label) has unknown type \(declared.type)")
        }
        if kind == .boolean, declared.minimum != 0 || declared.maximum != 1 {
            throw malformed("\(label) is boolean, so its range must be [0, 1], not [\(declared.minimum), \(declared.maximum)]")
        }
        guard declared.minimum <= declared.maximum else {
            throw malformed("\(label) has minimum \(declared.minimum) above maximum \(declared.maximum)")
        }
        let required = declared.flags & UInt32(REGULA_HYPERPARAMETER_REQUIRED) != 0
        return Hyperparameter(
            String(cString: namePointer), doc: declared.doc.map { String(cString: $0) } ?? "", kind: kind,
            default: required ? nil : declared.default_value, range: declared.minimum...declared.maximum)
    }

    private func slot(_ declared: regula_state_slot, label: String) throws(PluginLoadError) -> StateSlot {
        guard let namePointer = declared.name else { throw malformed("\(label) has a NULL name") }
        let shape: StateSlot.Shape
        switch declared.shape {
        case UInt32(REGULA_SLOT_ELEMENTWISE): shape = .elementwise
        case UInt32(REGULA_SLOT_SCALAR): shape = .scalar
        default: throw malformed("\(label) has unknown shape \(declared.shape)")
        }
        return StateSlot(String(cString: namePointer), doc: declared.doc.map { String(cString: $0) } ?? "",
                         shape: shape, initialValue: declared.initial_value)
    }

    private func reduction(_ declared: regula_reduction, label: String) throws(PluginLoadError) -> Reduction {
        guard let namePointer = declared.name else { throw malformed("\(label) has a NULL name") }
        let combine: Reduction.Combine
        switch declared.combine {
        case UInt32(REGULA_COMBINE_SUM): combine = .sum
        case UInt32(REGULA_COMBINE_MAX): combine = .max
        case UInt32(REGULA_COMBINE_MIN): combine = .min
        default: throw malformed("\(label) has unknown combine \(declared.combine)")
        }
        return Reduction(String(cString: namePointer), doc: declared.doc.map { String(cString: $0) } ?? "",
                         combine: combine)
    }

    /// Reads `count` versioned structs of type `Element` starting at `first`.
    private func elements<Element, Value>(
        _ first: UnsafePointer<Element>?, count: UInt32, limit: Int, what: String,
        read: (Element, String) throws(PluginLoadError) -> Value
    ) throws(PluginLoadError) -> [Value] {
        guard count > 0 else { return [] }
        guard Int(count) <= limit else { throw malformed("\(what): count is \(count); allowed: 0 to \(limit)") }
        guard let first else { throw malformed("\(what): count is \(count) but the array is NULL") }
        let base = UnsafeRawPointer(first)
        let stride = try arrayStride(base, what: what)
        var values: [Value] = []
        for index in 0..<Int(count) {
            let label = "\(what), entry \(index)"
            let declared: Element = try element(base + index * stride, stride: stride, what: label)
            values.append(try read(declared, label))
        }
        return values
    }

    /// The stride of an array of versioned structs: its first element's `struct_size`.
    private func arrayStride(_ base: UnsafeRawPointer, what: String) throws(PluginLoadError) -> Int {
        let stride = Int(base.load(as: UInt32.self))
        guard stride % 8 == 0 else { throw malformed("\(what): struct_size \(stride) is not a multiple of 8") }
        return stride
    }

    /// Copies a struct that declares `size` bytes into a zeroed `T`: fields past `size` read as zero.
    ///
    /// `minimum` is the struct's size in ABI 1.0 (today's size unless a later minor appended fields); fields
    /// a smaller, older struct lacks read as zero.
    private func versioned<T>(_ address: UnsafeRawPointer, size: Int, minimum: Int? = nil, what: String) throws(PluginLoadError) -> T {
        let current = MemoryLayout<T>.size, minimum = minimum ?? current
        guard (minimum...Self.maximumStructSize).contains(size) else {
            throw malformed("\(what): struct_size is \(size); allowed: \(minimum) to \(Self.maximumStructSize)")
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: current, alignment: MemoryLayout<T>.alignment)
        defer { copy.deallocate() }
        copy.initializeMemory(as: UInt8.self, repeating: 0, count: current)
        copy.copyMemory(from: address, byteCount: min(size, current))
        return copy.load(as: T.self)
    }

    /// Reads an array element whose leading `struct_size` must equal the array's stride.
    private func element<T>(_ address: UnsafeRawPointer, stride: Int, what: String) throws(PluginLoadError) -> T {
        let declared = Int(address.load(as: UInt32.self))
        guard declared == stride else {
            throw malformed("\(what): struct_size is \(declared), but the array's first entry says \(stride)")
        }
        return try versioned(address, size: stride, what: what)
    }

    private func malformed(_ problem: String) -> PluginLoadError {
        PluginLoadError(path: object.path, reason: .malformed(problem))
    }
}
