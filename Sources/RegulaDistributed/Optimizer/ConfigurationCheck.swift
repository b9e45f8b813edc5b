import Foundation
import Regula

/// One labelled fact about a rank's optimizer ("rules", "group 0 options"), compared across ranks when the
/// optimizer is built.
struct ConfigurationLine: Codable, Equatable {
    let label: String
    let value: String

    static func encode(_ lines: [ConfigurationLine]) -> [UInt8] {
        Array((try? JSONEncoder().encode(lines)) ?? Data())
    }

    /// Why the ranks cannot go on together, from every rank's lines, or nil when they all built the same
    /// optimizer. Every rank reaches the same answer from the same lines.
    static func refusal(_ all: [[UInt8]], size: Int) -> DistributedError? {
        let described = all.map { (try? JSONDecoder().decode([ConfigurationLine].self, from: Data($0)))
            ?? [ConfigurationLine(label: "error", value: "its description could not be read")] }
        if let rank = described.firstIndex(where: { $0.first?.label == "error" }) {
            return DistributedError(onRank: rank, of: size, "could not build its optimizer: \(described[rank][0].value)")
        }
        for rank in 1..<max(size, 1) {
            let (ours, theirs) = (described[0], described[rank])
            guard ours != theirs else { continue }
            let index = (0..<min(ours.count, theirs.count)).first(where: { ours[$0] != theirs[$0] }) ?? min(ours.count, theirs.count)
            let label = index < ours.count ? ours[index].label : theirs[index].label
            let value = { (lines: [ConfigurationLine]) in index < lines.count && lines[index].label == label ? lines[index].value : "nothing" }
            return DistributedError("the ranks disagree on the \(label): rank 0 has \(value(ours)), rank \(rank) has \(value(theirs)); "
                                        + "every rank must build the same optimizer", rank: rank)
        }
        return nil
    }
}

extension DistributedOptimizer {
    /// What every rank must agree on: the mode, the chain, the defaults, the groups (their parameters, chains,
    /// options and choices).
    static func describe(mode: Mode, optimizer: Optimizer, parameters: [Parameter], bucketBytes: Int) -> [ConfigurationLine] {
        var lines = [
            ConfigurationLine(label: "mode", value: mode.rawValue),
            ConfigurationLine(label: "rules", value: optimizer.rules.map { "\($0.name) (version \($0.version))" }.joined(separator: " > ")),
            ConfigurationLine(label: "defaults", value: text(optimizer.defaults)),
            ConfigurationLine(label: "default choices", value: text(optimizer.defaultChoices)),
            ConfigurationLine(label: "number of groups", value: "\(optimizer.groups.count)"),
        ]
        var position = 0
        for (index, group) in optimizer.groups.enumerated() {
            let wholes = parameters[position..<(position + group.parameters.count)]
            position += group.parameters.count
            lines.append(ConfigurationLine(label: "parameters of group \(index)",
                                           value: wholes.map { "\"\($0.name)\" (\($0.count) \($0.dtype))" }.joined(separator: ", ")))
            lines.append(ConfigurationLine(label: "rules of group \(index)", value: (group.rules ?? []).joined(separator: " > ")))
            lines.append(ConfigurationLine(label: "options of group \(index)", value: text(group.options)))
            lines.append(ConfigurationLine(label: "choices of group \(index)", value: text(group.choices)))
        }
        lines.append(ConfigurationLine(label: "bucket size", value: "\(bucketBytes) bytes"))
        return lines
    }

    /// Options or choices as `key=value, …` in key order, each value exact.
    static func text(_ options: [String: some CustomStringConvertible]) -> String {
        options.isEmpty ? "none" : options.keys.sorted().map { "\($0)=\(options[$0]!)" }.joined(separator: ", ")
    }

    /// Before a step touches anything: the ranks check that they step the same parameters with the same
    /// options and choices, and agree on which parameters have a gradient (their positions, returned).
    /// - Throws: ``DistributedError`` on every rank when they disagree; nothing has changed.
    func agreeOnStep() throws(DistributedError) -> [Int] {
        let groups = local.groups
        let intact = groups.flatMap(\.parameters).elementsEqual(inner, by: ===)
        // One line per setting, "what\tvalue", compared across ranks through a fingerprint.
        let options = ["nonFiniteSteps\t\(local.nonFiniteSteps == .skip ? "skip" : "proceed")"]
            + groups.enumerated().flatMap { index, group in
                group.options.keys.sorted().map { "\"\($0)\" in group \(index)\t\(group.options[$0]!)" }
                    + group.choices.keys.sorted().map { "choice \"\($0)\" in group \(index)\t\(group.choices[$0]!)" }
            }
        var header = withUnsafeBytes(of: fingerprint(options).littleEndian) { Array($0) } + [intact ? 1 : 0]
        var bits = [UInt8](repeating: 0, count: (parameters.count + 7) / 8)
        for (index, parameter) in parameters.enumerated() where parameter.hasGradient { bits[index / 8] |= 1 << (index % 8) }
        header += bits
        let all = communicator.allgather(sameCount: header, .byte)
        let headers = (0..<communicator.size).map { Array(all[($0 * header.count)..<(($0 + 1) * header.count)]) }
        if let rank = headers.firstIndex(where: { $0[8] == 0 }) {
            throw DistributedError(onRank: rank, of: communicator.size, "the parameters of its local optimizer's groups were changed; "
                                   + "a distributed optimizer's parameters are fixed when it is built")
        }
        for (index, parameter) in parameters.enumerated() {
            let has = headers.map { $0[9 + index / 8] & (1 << (index % 8)) != 0 }
            if let with = has.firstIndex(of: true), let without = has.firstIndex(of: false) {
                throw DistributedError("parameter \"\(parameter.name)\" has a gradient on rank \(with) but none on rank \(without); "
                                       + "every rank must have gradients for the same parameters", rank: without)
            }
        }
        if Set(headers.map { $0.prefix(8) }).count > 1 {
            throw optionsDisagreement(options)
        }
        return parameters.indices.filter { parameters[$0].hasGradient }
    }

    /// Which setting differs between which ranks, in words, from every rank's settings (`what\tvalue` lines).
    private func optionsDisagreement(_ options: [String]) -> DistributedError {
        let all = communicator.allgather(bytes: Array(options.joined(separator: "\n").utf8)).map { text in
            Dictionary(String(decoding: text, as: UTF8.self).split(separator: "\n").map {
                let fields = $0.split(separator: "\t", maxSplits: 1).map(String.init)
                return (fields[0], fields.count > 1 ? fields[1] : "")
            }, uniquingKeysWith: { first, _ in first })
        }
        for rank in all.indices.dropFirst() where all[rank] != all[0] {
            let what = Set(all[0].keys).union(all[rank].keys).sorted().first { all[0][$0] != all[rank][$0] }!
            return DistributedError("the ranks' options differ: \(what) is \(all[0][what] ?? "not set") on rank 0 but "
                                    + "\(all[rank][what] ?? "not set") on rank \(rank); change options on every rank alike", rank: rank)
        }
        return DistributedError("the ranks' options differ; change options on every rank alike")
    }

    /// 64-bit FNV-1a of the lines, to compare options across ranks in a few bytes.
    private func fingerprint(_ lines: [String]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in lines.joined(separator: "\n").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
