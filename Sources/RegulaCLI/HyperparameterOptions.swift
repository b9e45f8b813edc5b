import ArgumentParser

/// The repeatable `--option key=value` of commands that run a chain: a number, or the name of a choice.
struct HyperparameterOptions: ParsableArguments {
    @Option(name: .customLong("option"),
            help: ArgumentHelp("A hyperparameter, as key=number, or key=name for a choice (repeatable).", valueName: "key=value"))
    var values: [String] = []

    func validate() throws {
        for option in values where Self.parse(option) == nil {
            throw ValidationError("--option \"\(option)\" is not key=number or key=name (a choice's name)")
        }
    }

    /// The options given as numbers, by name (a later one wins).
    var given: [String: Double] {
        Dictionary(values.compactMap(Self.parse).compactMap { name, value in Double(value).map { (name, $0) } },
                   uniquingKeysWith: { $1 })
    }

    /// The options given as names, which are choices, by option name (a later one wins).
    var choices: [String: String] {
        Dictionary(values.compactMap(Self.parse).filter { Double($0.1) == nil }, uniquingKeysWith: { $1 })
    }

    /// The options given, as every rank of a job must be given them: `name=value` in name order, comma-separated.
    var setting: (name: String, value: String) {
        let all = given.mapValues { "\($0)" }.merging(choices) { $1 }
        return ("--option", all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))
    }

    /// `defaults` with the given numbers laid over them.
    func laid(over defaults: [String: Double]) -> [String: Double] { defaults.merging(given) { $1 } }

    private static func parse(_ option: String) -> (String, String)? {
        let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        return (parts[0], parts[1])
    }
}
