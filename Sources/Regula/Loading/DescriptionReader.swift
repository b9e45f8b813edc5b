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
    static let maximumChains = 1024
    static let maximumHyperparameters = 64
    static let maximumSlots = 64
    static let maximumReductions = 16
    static let maximumStructSize = 4096

    let object: SharedObject

    /// What one plugin provides: its rules and (since ABI 1.2) its named chains.
    struct Contents {
        var rules: [Rule]
        var chains: [NamedChain]
    }

    /// The rules and chains the plugin describes, or the reason it breaks the contract.
    func contents(from described: UnsafePointer<regula_plugin>?) throws(RegistryError) -> Contents {
        guard let described else { throw malformed("\(RegulaABISymbols.entry)() returned NULL") }
        let raw = UnsafeRawPointer(described)
        let major = raw.load(fromByteOffset: 0, as: UInt32.self)
        let minor = raw.load(fromByteOffset: 4, as: UInt32.self)
        guard major == RegulaABISymbols.major else {
            throw RegistryError(path: object.path, reason: .incompatibleABI(pluginMajor: major, pluginMinor: minor))
        }
        let size = Int(raw.load(fromByteOffset: 8, as: UInt32.self))
        // ABI 1.0 plugins end before `toolchain` (24 bytes); the copy then reads it as NULL.
        let plugin: regula_plugin = try versioned(raw, size: size, minimum: 24, what: "regula_plugin")
        if let toolchain = try text(plugin.toolchain, what: "regula_plugin.toolchain") {
            let ours = String(cString: regula_swift_toolchain())
            guard toolchain == ours else {
                throw malformed("it was built with \(toolchain), but this host with \(ours); a Swift plugin must be "
                                + "built by the same Swift toolchain as the host (Swift's ABI is not stable on Linux)")
            }
        }
        // ABI 1.2 appended chain_count and chains; a smaller struct reads them as 0 and NULL.
        let chains = try elements(plugin.chains, count: plugin.chain_count, limit: Self.maximumChains,
                                  what: "chains", read: chain)
        let count = Int(plugin.rule_count)
        guard (1...Self.maximumRules).contains(count) || (count == 0 && !chains.isEmpty) else {
            throw malformed("rule_count is \(count); allowed: 1 to \(Self.maximumRules) (0 only in a plugin that declares chains)")
        }
        guard count > 0 else { return Contents(rules: [], chains: chains) }
        guard let first = plugin.rules else { throw malformed("rule_count is \(count) but rules is NULL") }
        let base = UnsafeRawPointer(first)
        let stride = try arrayStride(base, what: "regula_rule")
        let rules = try (0..<count).map { index throws(RegistryError) in
            try rule(at: base + index * stride, stride: stride, index: index)
        }
        return Contents(rules: rules, chains: chains)
    }

    private func rule(at address: UnsafeRawPointer, stride: Int, index: Int) throws(RegistryError) -> Rule {
        let declared: regula_rule = try element(address, stride: stride, what: "rules[\(index)]")
        guard let name = try text(declared.name, what: "the name of rules[\(index)]") else {
            throw malformed("rules[\(index)] has a NULL name")
        }
        let label = "rule \(quoted(name)) (rules[\(index)])"
        guard let kernel = declared.kernel else { throw malformed("\(label) has no kernel") }
        let known = UInt32(REGULA_RULE_NEVER_FAILS | REGULA_RULE_UPDATE_ONLY | REGULA_RULE_USES_ABI_1_2
                           | REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3)
        guard declared.flags & ~known == 0 else {
            throw malformed("\(label) sets unknown flags 0x\(String(declared.flags & ~known, radix: 16)); ABI \(RegulaABISymbols.major).\(RegulaABISymbols.minor) defines REGULA_RULE_NEVER_FAILS (0x1), REGULA_RULE_UPDATE_ONLY (0x2), REGULA_RULE_USES_ABI_1_2 (0x4), REGULA_RULE_WHOLE_TENSOR (0x8) and REGULA_RULE_USES_ABI_1_3 (0x10)")
        }
        let ranks = try rankRange(min: declared.min_rank, max: declared.max_rank, label: label)
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
        let rule = Rule(
            name: name, summary: try text(declared.summary, what: "the summary of \(label)") ?? "",
            version: Int(declared.version), dtypes: dtypes, hyperparameters: hyperparameters,
            stateSlots: slots, reductions: reductions,
            neverFails: declared.flags & UInt32(REGULA_RULE_NEVER_FAILS) != 0,
            updateOnly: declared.flags & UInt32(REGULA_RULE_UPDATE_ONLY) != 0,
            scratchCount: Int(declared.scratch_count),
            isWholeTensor: declared.flags & UInt32(REGULA_RULE_WHOLE_TENSOR) != 0, ranks: ranks,
            origin: .sharedObject(path: object.path),
            kernel: RuleKernel(kernel: kernel, check: declared.check, reduce: declared.reduce, prepare: declared.prepare,
                               ruleData: declared.rule_data, owner: object))
        // A 1.1 host would ignore these fields and run the rule wrongly; the flag makes it refuse the rule.
        if rule.usesABI12 && declared.flags & UInt32(REGULA_RULE_USES_ABI_1_2) == 0 {
            throw malformed("\(label) uses ABI 1.2 features (prepare, scratch, initial_from, enabled_by or a step-wide reduction) "
                            + "but does not set REGULA_RULE_USES_ABI_1_2, which makes older hosts refuse it instead of running it wrongly")
        }
        if rule.usesABI13 && declared.flags & UInt32(REGULA_RULE_USES_ABI_1_3) == 0 {
            throw malformed("\(label) uses ABI 1.3 features (REGULA_RULE_WHOLE_TENSOR, min_rank or max_rank of the rule or a slot, a ROWS or COLUMNS slot, or REGULA_SLOT_FROM_PARAMETER) but does not set "
                            + "REGULA_RULE_USES_ABI_1_3, which makes older hosts refuse it instead of running it wrongly")
        }
        return rule
    }

    /// The ranks a rule or slot declares (ABI 1.3; 0 is no bound): each 1 to REGULA_MAX_RANK, the smallest
    /// first; an unbounded minimum is `floor`.
    private func rankRange(min: UInt64, max: UInt64, floor: Int = 1, label: String) throws(RegistryError) -> ClosedRange<Int> {
        let limit = UInt64(Parameter.maximumRank)
        for (field, value) in [("min_rank", min), ("max_rank", max)] where value > limit {
            throw malformed("\(label): \(field) is \(value); allowed: 0 (no bound) or 1 to \(limit)")
        }
        let lowest = min == 0 ? floor : Int(min)
        let highest = max == 0 ? Int(limit) : Int(max)
        guard lowest <= highest else {
            throw malformed("\(label): min_rank \(lowest) is above max_rank \(highest)")
        }
        return lowest...highest
    }

    private func chain(_ declared: regula_chain, label: String) throws(RegistryError) -> NamedChain {
        let name = try requiredName(declared.name, of: label)
        let count = Int(declared.rule_count)
        guard (1...NamedChain.maximumRules).contains(count) else {
            throw malformed("chain \(quoted(name)): rule_count is \(count); allowed: 1 to \(NamedChain.maximumRules)")
        }
        let rules = try strings(declared.rules, count: count, allowed: 1...NamedChain.maximumRules, what: "rules of chain \(quoted(name))")
        let defaults = try elements(declared.defaults, count: declared.default_count, limit: NamedChain.maximumDefaults,
                                    what: "defaults of chain \(quoted(name))") { (entry: regula_chain_default, label) throws(RegistryError) in
            let option = try requiredName(entry.name, of: label)
            return (option, entry.value)
        }
        if let repeated = duplicates(in: defaults.map(\.0)).first {
            throw malformed("chain \(quoted(name)) gives a default for \(quoted(repeated)) twice")
        }
        return NamedChain(name: name, summary: try text(declared.summary, what: "the summary of chain \(quoted(name))") ?? "", rules: rules,
                          defaults: Dictionary(uniqueKeysWithValues: defaults), origin: .sharedObject(path: object.path))
    }

    private func hyperparameter(_ declared: regula_hyperparameter, label: String) throws(RegistryError) -> Hyperparameter {
        let name = try requiredName(declared.name, of: label)
        let kind: Hyperparameter.Kind = try decoded(declared.type, [
            Int(REGULA_HYPERPARAMETER_REAL): .real, Int(REGULA_HYPERPARAMETER_INTEGER): .integer,
            Int(REGULA_HYPERPARAMETER_BOOLEAN): .boolean, Int(REGULA_HYPERPARAMETER_CHOICE): .choice], "type", of: label)
        if kind == .boolean, declared.minimum != 0 || declared.maximum != 1 {
            throw malformed("\(label) is boolean, so its range must be [0, 1], not [\(declared.minimum), \(declared.maximum)]")
        }
        guard declared.minimum <= declared.maximum else {
            throw malformed("\(label) has minimum \(declared.minimum) above maximum \(declared.maximum)")
        }
        let required = declared.flags & UInt32(REGULA_HYPERPARAMETER_REQUIRED) != 0
        let doc = try text(declared.doc, what: "the doc of \(label)") ?? ""
        if kind == .choice {
            // ABI 1.3 appended the names; the rule's declaration check judges them and the range.
            let names = try strings(declared.choices, count: Int(declared.choice_count), allowed: 2...64, what: "choices of \(label)")
            return Hyperparameter(name, doc: doc, choices: names, defaultIndex: required ? nil : declared.default_value,
                                  range: declared.minimum...declared.maximum)
        }
        return Hyperparameter(
            name, doc: doc, kind: kind,
            default: required ? nil : declared.default_value, range: declared.minimum...declared.maximum)
    }

    private func slot(_ declared: regula_state_slot, label: String) throws(RegistryError) -> StateSlot {
        let name = try requiredName(declared.name, of: label)
        let shape: StateSlot.Shape = try decoded(declared.shape, [
            Int(REGULA_SLOT_ELEMENTWISE): .elementwise, Int(REGULA_SLOT_SCALAR): .scalar,
            Int(REGULA_SLOT_ROWS): .rows, Int(REGULA_SLOT_COLUMNS): .columns], "shape", of: label)
        let known = UInt32(REGULA_SLOT_NON_NEGATIVE | REGULA_SLOT_FROM_PARAMETER)
        guard declared.flags & ~known == 0 else {
            throw malformed("\(label) sets unknown flags 0x\(String(declared.flags & ~known, radix: 16)); ABI \(RegulaABISymbols.major).\(RegulaABISymbols.minor) defines REGULA_SLOT_NON_NEGATIVE (0x1) and REGULA_SLOT_FROM_PARAMETER (0x2)")
        }
        let ranks: ClosedRange<Int>?
        if declared.min_rank == 0 && declared.max_rank == 0 {
            ranks = nil
        } else {
            let floor = shape == .rows || shape == .columns ? 2 : 1
            ranks = try rankRange(min: UInt64(declared.min_rank), max: UInt64(declared.max_rank), floor: floor, label: label)
        }
        return StateSlot(name, doc: try text(declared.doc, what: "the doc of \(label)") ?? "",
                         shape: shape, initialValue: declared.initial_value,
                         initialFrom: try text(declared.initial_from, what: "initial_from of \(label)"),
                         enabledBy: try text(declared.enabled_by, what: "enabled_by of \(label)"),
                         isNonNegative: declared.flags & UInt32(REGULA_SLOT_NON_NEGATIVE) != 0,
                         startsFromParameter: declared.flags & UInt32(REGULA_SLOT_FROM_PARAMETER) != 0, ranks: ranks)
    }

    private func reduction(_ declared: regula_reduction, label: String) throws(RegistryError) -> Reduction {
        let name = try requiredName(declared.name, of: label)
        let combine: Reduction.Combine = try decoded(declared.combine, [
            Int(REGULA_COMBINE_SUM): .sum, Int(REGULA_COMBINE_MAX): .max, Int(REGULA_COMBINE_MIN): .min], "combine", of: label)
        let scope: Reduction.Scope = try decoded(declared.scope, [
            Int(REGULA_REDUCTION_PARAMETER): .parameter, Int(REGULA_REDUCTION_STEP): .step], "scope", of: label)
        return Reduction(name, doc: try text(declared.doc, what: "the doc of \(label)") ?? "",
                         combine: combine, scope: scope)
    }

    /// The `count` strings of an array of C strings, none of them NULL; `what` names the array in refusals.
    private func strings(_ array: UnsafePointer<UnsafePointer<CChar>?>?, count: Int, allowed: ClosedRange<Int>,
                         what: String) throws(RegistryError) -> [String] {
        guard allowed.contains(count) else {
            throw malformed("\(what): count is \(count); allowed: \(allowed.lowerBound) to \(allowed.upperBound)")
        }
        guard let array else { throw malformed("\(what): count is \(count) but the array is NULL") }
        try requireReadable(UnsafeRawPointer(array), count: count * MemoryLayout<UnsafePointer<CChar>?>.size, what: "the array of \(what)")
        return try (0..<count).map { index throws(RegistryError) in
            guard let entry = try text(array[index], what: "entry \(index) of \(what)") else {
                throw malformed("\(what): entry \(index) is NULL")
            }
            return entry
        }
    }

    /// Reads `count` versioned structs of type `Element` starting at `first`.
    private func elements<Element, Value>(
        _ first: UnsafePointer<Element>?, count: UInt32, limit: Int, what: String,
        read: (Element, String) throws(RegistryError) -> Value
    ) throws(RegistryError) -> [Value] {
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
    private func arrayStride(_ base: UnsafeRawPointer, what: String) throws(RegistryError) -> Int {
        try requireReadable(base, count: 4, what: "the first entry of \(what)")
        let stride = Int(base.load(as: UInt32.self))
        guard stride % 8 == 0 else { throw malformed("\(what): struct_size \(stride) is not a multiple of 8") }
        return stride
    }

    /// Copies a struct that declares `size` bytes into a zeroed `T`: fields past `size` read as zero.
    ///
    /// `minimum` is the struct's size in ABI 1.0 (today's size unless a later minor appended fields); fields
    /// a smaller, older struct lacks read as zero.
    private func versioned<T>(_ address: UnsafeRawPointer, size: Int, minimum: Int? = nil, what: String) throws(RegistryError) -> T {
        let current = MemoryLayout<T>.size, minimum = minimum ?? current
        guard (minimum...Self.maximumStructSize).contains(size) else {
            throw malformed("\(what): struct_size is \(size); allowed: \(minimum) to \(Self.maximumStructSize)")
        }
        let copy = UnsafeMutableRawPointer.allocate(byteCount: current, alignment: MemoryLayout<T>.alignment)
        defer { copy.deallocate() }
        copy.initializeMemory(as: UInt8.self, repeating: 0, count: current)
        try requireReadable(address, count: size, what: what)
        copy.copyMemory(from: address, byteCount: min(size, current))
        return copy.load(as: T.self)
    }

    /// Reads an array element whose leading `struct_size` must equal the array's stride.
    private func element<T>(_ address: UnsafeRawPointer, stride: Int, what: String) throws(RegistryError) -> T {
        try requireReadable(address, count: 4, what: what)
        let declared = Int(address.load(as: UInt32.self))
        guard declared == stride else {
            throw malformed("\(what): struct_size is \(declared), but the array's first entry says \(stride)")
        }
        return try versioned(address, size: stride, minimum: Self.originalSize(of: T.self), what: what)
    }

    /// A struct's size in the ABI version that introduced it: smaller structs are refused, and fields a
    /// later minor appended read as zero from a struct of this size.
    static func originalSize<T>(of type: T.Type) -> Int? {
        switch type {
        case is regula_rule.Type: 112               // 1.0; 1.2 appended prepare and scratch_count (128), 1.3 min_rank and max_rank (144)
        case is regula_state_slot.Type: 40          // 1.0; 1.2 appended initial_from and enabled_by (56), 1.3 flags, min_rank and max_rank (72)
        case is regula_reduction.Type: 32           // 1.0; 1.2 appended scope (40)
        case is regula_hyperparameter.Type: 56      // 1.0; 1.3 appended choice_count and choices (72)
        default: nil                                // unchanged since it appeared
        }
    }

    /// The longest string a description may hold, terminator included.
    static let maximumStringBytes = 4096

    /// The C string at `pointer` (nil for NULL), read only after each page it lies on is known to be readable
    /// and with a terminator within ``maximumStringBytes``: a damaged description cannot make the host read
    /// unmapped memory. Readability is a property of whole pages, so one byte per page is asked of the kernel,
    /// and no byte past the terminator is touched.
    /// The name `pointer` points to; a NULL name is refused, naming `label`.
    private func requiredName(_ pointer: UnsafePointer<CChar>?, of label: String) throws(RegistryError) -> String {
        guard let name = try text(pointer, what: "the name of \(label)") else { throw malformed("\(label) has a NULL name") }
        return name
    }

    /// The value `values` gives the C constant `code`; another code is refused, naming `label` and `what` it is.
    private func decoded<Value>(_ code: some BinaryInteger, _ values: [Int: Value], _ what: String, of label: String)
        throws(RegistryError) -> Value {
        guard let value = Int(exactly: code).flatMap({ values[$0] }) else { throw malformed("\(label) has unknown \(what) \(code)") }
        return value
    }

    private func text(_ pointer: UnsafePointer<CChar>?, what: String) throws(RegistryError) -> String? {
        guard let pointer else { return nil }
        let bytes = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self)
        for index in 0..<Self.maximumStringBytes {
            if index == 0 || UInt(bitPattern: bytes + index) % 4096 == 0 {
                guard SharedObject.isReadable(bytes + index, count: 1) else {
                    throw malformed("\(what) points to 0x\(String(UInt(bitPattern: bytes), radix: 16)), which is not readable memory")
                }
            }
            if bytes[index] == 0 {
                return String(decoding: UnsafeBufferPointer(start: bytes, count: index), as: UTF8.self)
            }
        }
        throw malformed("\(what) is not NUL-terminated within \(Self.maximumStringBytes) bytes")
    }

    /// Refuses unless `count` bytes at `address` can be read.
    private func requireReadable(_ address: UnsafeRawPointer, count: Int, what: String) throws(RegistryError) {
        guard SharedObject.isReadable(address, count: count) else {
            throw malformed("\(what) at 0x\(String(UInt(bitPattern: address), radix: 16)) (\(count) bytes) is not readable memory")
        }
    }

    private func malformed(_ problem: String) -> RegistryError {
        RegistryError(path: object.path, reason: .malformed(problem))
    }
}
