import ArgumentParser

/// The repeatable `--option key=value` of commands that run a chain.
struct HyperparameterOptions: ParsableArguments {
    @Option(name: .customLong("option"), help: ArgumentHelp("A hyperparameter, as key=value (repeatable).", valueName: "key=value"))
    var values: [String] = []

    func validate() throws {
        for option in values where Self.parse(option) == nil {
            throw ValidationError("--option \"\(option)\" is not key=number")
        }
    }

    /// The options given, by name (a later one wins).
    var given: [String: Double] {
        Dictionary(values.compactMap(Self.parse), uniquingKeysWith: { $1 })
    }

    /// `defaults` with the given options laid over them.
    /// The options given, as every rank of a job must be given them: `name=value` in name order, comma-separated.
    var setting: (name: String, value: String) {
        ("--option", given.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))
    }

    func laid(over defaults: [String: Double]) -> [String: Double] { defaults.merging(given) { $1 } }

    private static func parse(_ option: String) -> (String, Double)? {
        let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let value = Double(parts[1]) else { return nil }
        return (parts[0], value)
    }
}
