/// The rules of an optimizer in order, with what follows from them: the hyperparameters they accept and
/// the names of their state slots.
struct Chain: @unchecked Sendable {
    let rules: [Rule]
    /// Defaults the named chains among the optimizer's names give, above the rules' own defaults.
    let chainDefaults: [String: Double]
    /// The named chains' defaults for choices, by name (a chain gives a choice's default as its index).
    let chainChoices: [String: String]
    /// Every hyperparameter name some rule declares, in first-declared order.
    let hyperparameterNames: [String]
    /// Each choice hyperparameter's names, as the first rule declaring it lists them.
    let choiceNames: [String: [String]]
    /// For each rule, the names its state slots are reported and checkpointed under (``slotKeys(for:)``).
    let slotKeys: [[String]]
    /// The rule and declaration behind each slot key.
    let slotOwners: [String: (rule: Rule, slot: StateSlot)]
    /// Rule indices grouped into stages that run over every block before the next stage starts: a new stage
    /// begins at each rule that declares reductions, which need the whole parameter as the rules before
    /// them left it, and a whole-tensor rule is a stage of its own. Most chains are a single stage.
    let stages: [[Int]]

    init(_ rules: [Rule], chainDefaults: [String: Double] = [:]) {
        self.rules = rules
        var names: [String] = []
        for name in rules.flatMap({ $0.hyperparameters.map(\.name) }) where !names.contains(name) { names.append(name) }
        hyperparameterNames = names
        var choiceNames: [String: [String]] = [:]
        for choice in rules.flatMap(\.hyperparameters) where choice.kind == .choice && choiceNames[choice.name] == nil {
            choiceNames[choice.name] = choice.choices
        }
        self.choiceNames = choiceNames
        // A chain gives a choice's default as its index; one that is no index stays a number, refused with the names.
        var numbers: [String: Double] = [:], chosen: [String: String] = [:]
        for (name, value) in chainDefaults {
            if let names = choiceNames[name], let index = Int(exactly: value), names.indices.contains(index) {
                chosen[name] = names[index]
            } else {
                numbers[name] = value
            }
        }
        (self.chainDefaults, chainChoices) = (numbers, chosen)
        var stages: [[Int]] = []
        for (index, rule) in rules.enumerated() {
            let afterWhole = index > 0 && rules[index - 1].isWholeTensor
            if stages.isEmpty || !rule.reductions.isEmpty || rule.isWholeTensor || afterWhole { stages.append([]) }
            stages[stages.count - 1].append(index)
        }
        self.stages = stages
        slotKeys = Self.slotKeys(for: rules)
        var owners: [String: (rule: Rule, slot: StateSlot)] = [:]
        for (rule, keys) in zip(rules, slotKeys) {
            for (slot, key) in zip(rule.stateSlots, keys) { owners[key] = (rule, slot) }
        }
        slotOwners = owners
    }

    /// The key of each rule's slots: the slot's own name (`exp_avg`) when no other rule of the chain has a slot
    /// of that name; `rule.slot` when two different rules do (`momentum.momentum_buffer`); and, for a rule
    /// that appears more than once, `rule#k.slot` with k counting its appearances from 1
    /// (`momentum#2.momentum_buffer`), so that every slot of every position has a key of its own.
    static func slotKeys(for rules: [Rule]) -> [[String]] {
        let clashing = Set(duplicates(in: rules.flatMap { $0.stateSlots.map(\.name) }))
        let repeated = Set(duplicates(in: rules.map(\.name)))
        var seen: [String: Int] = [:]
        return rules.map { rule in
            seen[rule.name, default: 0] += 1
            let prefix = repeated.contains(rule.name) ? "\(rule.name)#\(seen[rule.name]!)" : rule.name
            return rule.stateSlots.map { clashing.contains($0.name) ? "\(prefix).\($0.name)" : $0.name }
        }
    }

    /// `group` with every hyperparameter of the chain filled in: numbers from `defaults`, choices from
    /// `choices`, then from the named chains' defaults, then from the rules; and with `rules`, the names the
    /// chain was built from. Defaults the chain does not read are left out.
    /// - Throws: For a name no rule declares, a choice given as a number or a number given as a choice;
    ///   `index` says which group it came from.
    func filled(_ group: ParamGroup, defaults: [String: Double], choices: [String: String], index: Int,
                rules names: [String]) throws(OptimizerError) -> ParamGroup {
        try checkNames(group.options, group: index)
        try checkChoices(group.choices, group: index)
        var filled = ParamGroup(group.parameters, rules: names, options: group.options, choices: group.choices)
        for name in hyperparameterNames {
            let declared = rules.lazy.compactMap { $0.hyperparameter(named: name) }
            if choiceNames[name] != nil {
                if filled.choices[name] == nil,
                   let choice = choices[name] ?? chainChoices[name] ?? declared.compactMap(\.defaultChoice).first {
                    filled.choices[name] = choice
                }
            } else if filled.options[name] == nil,
                      let value = defaults[name] ?? chainDefaults[name] ?? declared.compactMap(\.defaultValue).first {
                filled.options[name] = value
            }
        }
        return filled
    }

    /// Refuses any name that no rule of the chain declares, and a choice given as a number.
    func checkNames(_ options: [String: Double], group: Int?) throws(OptimizerError) {
        for name in options.keys.sorted() where !hyperparameterNames.contains(name) || choiceNames[name] != nil {
            if let names = choiceNames[name] { throw .choiceGivenAsNumber(name, value: options[name]!, group: group, choices: names) }
            throw .unknownHyperparameter(name, group: group, suggestion: suggestion(for: name, among: hyperparameterNames),
                                         accepted: hyperparameterNames, rules: rules.map(\.name))
        }
    }

    /// Refuses a name in `choices` that is no choice of the chain, and a value that is none of a rule's names.
    func checkChoices(_ choices: [String: String], group: Int?) throws(OptimizerError) {
        for (name, choice) in choices.sorted(by: { $0.key < $1.key }) {
            guard choiceNames[name] != nil else {
                if hyperparameterNames.contains(name) {
                    throw .numberGivenAsChoice(name, choice: choice, group: group, choiceOptions: choiceNames.keys.sorted())
                }
                throw .unknownHyperparameter(name, group: group, suggestion: suggestion(for: name, among: hyperparameterNames),
                                             accepted: hyperparameterNames, rules: rules.map(\.name))
            }
            for rule in rules {
                guard let names = rule.hyperparameter(named: name)?.choices, !names.contains(choice) else { continue }
                throw .unknownChoice(name, choice: choice, group: group, rule: rule.name,
                                     suggestion: suggestion(for: choice, among: names), choices: names)
            }
        }
    }

    /// Checks each value in `options` against every rule that declares it; `group` nil means defaults.
    func checkRanges(_ options: [String: Double], group: Int?) throws(OptimizerError) {
        for rule in rules {
            for hyperparameter in rule.hyperparameters {
                guard let value = options[hyperparameter.name], let problem = hyperparameter.problem(with: value) else { continue }
                throw .hyperparameterOutOfRange(hyperparameter.name, value: value, group: group, rule: rule.name, allowed: problem)
            }
        }
    }

    /// The values each rule receives, in its declaration order, after every range and combination check: a
    /// choice as the index of its name among the rule's names.
    func resolve(_ options: [String: Double], choices: [String: String], group: Int) throws(OptimizerError) -> ResolvedOptions {
        try checkNames(options, group: group)
        try checkChoices(choices, group: group)
        try checkRanges(options, group: group)
        var values: [Double] = []
        var offsets: [Int] = []
        for rule in rules {
            offsets.append(values.count)
            var own: [Double] = []
            for hyperparameter in rule.hyperparameters {
                let given = choices[hyperparameter.name].flatMap { hyperparameter.choices.firstIndex(of: $0) }.map(Double.init)
                guard let value = given ?? options[hyperparameter.name] ?? hyperparameter.defaultValue else {
                    throw .missingHyperparameter(hyperparameter.name, group: group, rule: rule.name)
                }
                own.append(value)
            }
            if let refusal = rule.kernel.refusal(of: own) {
                throw .combinationRejected(rule: rule.name, group: group, message: refusal)
            }
            values += own
        }
        return ResolvedOptions(options: options, choices: choices, values: values, offsets: offsets)
    }
}

/// A group's options after validation, laid out as the rules' kernels read them: every rule's values one
/// after the other, at an address that stays put while the executor's threads read it.
final class ResolvedOptions: @unchecked Sendable {
    /// The options and choices these values came from, to notice a change.
    let options: [String: Double]
    let choices: [String: String]
    /// Every rule's values, one after the other.
    let values: UnsafeMutablePointer<Double>
    /// Where each rule's values start in `values`.
    let offsets: [Int]

    init(options: [String: Double], choices: [String: String], values: [Double], offsets: [Int]) {
        self.options = options
        self.choices = choices
        self.values = .allocate(capacity: max(values.count, 1))
        self.values.initialize(repeating: 0, count: max(values.count, 1))
        self.values.update(from: values, count: values.count)
        self.offsets = offsets
    }

    deinit { values.deallocate() }
}
