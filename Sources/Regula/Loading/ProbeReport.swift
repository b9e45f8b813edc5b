import Foundation

/// What a probe process reports of one plugin file it loaded: the rules and chains the file declares, or why
/// it was refused. It travels as one line of JSON, so that a command which only shows plugins (`regula list`,
/// `regula inspect`) learns everything from the probe and runs none of a plugin's code in its own process.
enum ProbeReport: Codable {
    /// The file loaded; what it declares, its kernels left behind in the probe process.
    case contents(rules: [DescribedRule], chains: [NamedChain])
    /// The file was refused after the probe process loaded it (its description breaks the contract, …).
    case refused(RegistryError)

    /// A rule's declaration without its code; ``rule`` turns it back into a ``Rule`` that can be listed,
    /// looked up and inspected, and that an optimizer refuses.
    struct DescribedRule: Codable {
        let name: String
        let summary: String
        let version: Int
        let dtypes: [DType]
        let hyperparameters: [Hyperparameter]
        let stateSlots: [StateSlot]
        let reductions: [Reduction]
        let neverFails: Bool
        let updateOnly: Bool
        let scratchCount: Int
        let isWholeTensor: Bool
        let ranks: ClosedRange<Int>
        let origin: Rule.Origin
        let reduces: Bool
        let prepares: Bool

        init(_ rule: Rule) {
            (name, summary, version, dtypes) = (rule.name, rule.summary, rule.version, rule.dtypes)
            (hyperparameters, stateSlots, reductions) = (rule.hyperparameters, rule.stateSlots, rule.reductions)
            (neverFails, updateOnly, scratchCount, origin) = (rule.neverFails, rule.updateOnly, rule.scratchCount, rule.origin)
            (reduces, prepares) = (rule.kernel.reduce != nil, rule.kernel.prepare != nil)
            (isWholeTensor, ranks) = (rule.isWholeTensor, rule.ranks)
        }

        var rule: Rule {
            Rule(name: name, summary: summary, version: version, dtypes: dtypes, hyperparameters: hyperparameters,
                 stateSlots: stateSlots, reductions: reductions, neverFails: neverFails, updateOnly: updateOnly,
                 scratchCount: scratchCount, isWholeTensor: isWholeTensor, ranks: ranks, origin: origin,
                 kernel: .described(reduces: reduces, prepares: prepares))
        }
    }

    /// The report of a load that gave `contents` or failed with `error`.
    init(_ load: () throws(RegistryError) -> DescriptionReader.Contents) {
        do {
            let contents = try load()
            self = .contents(rules: contents.rules.map(DescribedRule.init), chains: contents.chains)
        } catch {
            self = .refused(error)
        }
    }

    /// The contents described, or the refusal rethrown.
    func contents() throws(RegistryError) -> DescriptionReader.Contents {
        switch self {
        case .contents(let rules, let chains): DescriptionReader.Contents(rules: rules.map(\.rule), chains: chains)
        case .refused(let error): throw error
        }
    }

    /// One line of JSON (newlines and tabs inside strings are escaped); infinite range ends as strings.
    var line: String {
        (try? Self.encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The report `line` holds, or nil when it holds none.
    init?(line: Substring) {
        guard let report = try? Self.decoder.decode(ProbeReport.self, from: Data(line.utf8)) else { return nil }
        self = report
    }

    private static let nonFinite = (positive: "inf", negative: "-inf", nan: "nan")
    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        return encoder
    }
    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        return decoder
    }
}
