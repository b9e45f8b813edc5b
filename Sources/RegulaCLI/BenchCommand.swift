import ArgumentParser
import Dispatch
import Foundation
import Regula
import RegulaDistributed

/// `regula bench`: times optimizer steps of a chain over synthetic parameters.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time optimizer steps of a rule chain over synthetic parameters.",
        discussion: """
            Reports the median over steps of nanoseconds per element, with the fastest step, the 90th \
            percentile and the slowest beside it (a median far above the fastest means steps were held up), and \
            the memory traffic the median implies: \
            each element's parameter is read and written, its gradient read, and each elementwise state slot \
            that a parameter of its rank has read and written (a whole-tensor rule's extra passes are not \
            counted). When a rule's matrix products loaded OpenBLAS, the report names it and the threads each \
            BLAS call had. Run a release build (`swift run -c release regula bench`): a debug build's numbers \
            say nothing about speed, and it warns so.

            Under mpirun, --distributed replicated|sharded times distributed steps instead: every rank holds \
            the same parameters and gradients, and each step averages the gradients across ranks before the \
            chain runs; rank 0 reports each step split into communication (time inside MPI, waiting for other \
            ranks included) and compute, the bytes each rank sends per step, and the state each rank holds \
            (Docs/DISTRIBUTED.md).
            """)

    @Option(help: "Rule names in chain order, comma-separated.")
    var rules = "l1,l2,nesterov,sgd"

    @OptionGroup var options: HyperparameterOptions

    // .unconditional: a negative number is a value that validate() refuses, not a missing value.
    @Option(parsing: .unconditional, help: "Elements in total.")
    var elements = 16_777_216

    @Option(parsing: .unconditional, help: "Tensors the elements are split into, evenly.")
    var tensors = 1

    @Option(help: "Each tensor's shape, sizes comma-separated (4096,1024), for rules that read it (muon); --elements becomes --tensors times their product.")
    var shape: String?

    @Option(help: "Element type: float32 or float64.")
    var dtype: String = "float32"

    @Option(parsing: .unconditional, help: "Timed steps (after two warm-up steps).")
    var steps = 20

    @Option(parsing: .unconditional, help: "Threads (default: every active processor).")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(name: .customLong("no-atomic"), help: "Turn off atomic steps (no journal; a failing rule may leave a step half done).")
    var notAtomic = false

    @Option(help: "Time distributed steps over the ranks of an MPI job started by mpirun: replicated or sharded.")
    var distributed: DistributedOptimizer.Mode?

    @Option(name: .customLong("bucket-bytes"), parsing: .unconditional, help: "With --distributed: gradient bytes per collective.")
    var bucketBytes = 4 << 20

    @OptionGroup var plugins: PluginOptions

    @OptionGroup var stepTimeout: StepTimeoutOption

    /// Whether this regula was built without optimization.
    static var isDebugBuild: Bool {
        #if DEBUG
        true
        #else
        false
        #endif
    }

    /// Options used unless given, for the hyperparameters the chain takes.
    static let standardOptions = ["lr": 0.01, "momentum": 0.9, "weight_decay1": 1e-4, "weight_decay2": 1e-4, "max_norm": 1]

    mutating func validate() throws {
        if let shape {
            // --tensors times the sizes, nil when that overflows.
            let total = tensorShape?.reduce(Int?(max(tensors, 1))) { total, size in
                total.flatMap { let product = $0.multipliedReportingOverflow(by: size); return product.overflow ? nil : product.partialValue }
            }
            guard let total = total ?? nil else {
                throw ValidationError("--shape is \"\(shape)\"; allowed: sizes of at least 1, comma-separated, such as 4096,1024, "
                                      + "whose product times --tensors is an element count")
            }
            elements = total
        }
        guard elements > 0 else { throw ValidationError("--elements is \(elements); it must be at least 1") }
        guard tensors > 0, tensors <= elements else {
            throw ValidationError("--tensors is \(tensors); it must be between 1 and --elements (\(elements))")
        }
        guard steps > 0 else { throw ValidationError("--steps is \(steps); it must be at least 1") }
        guard DType(rawValue: dtype) != nil else { throw ValidationError("--dtype is \"\(dtype)\"; allowed: float32, float64") }
        if let threads, threads < 1 { throw ValidationError("--threads is \(threads); it must be at least 1") }
        if distributed != nil, !(1024...(1 << 27)).contains(bucketBytes) {
            throw ValidationError("--bucket-bytes is \(bucketBytes); it must be between 1024 and \(1 << 27)")
        }
    }

    func run() throws {
        stepTimeout.start()
        if Self.isDebugBuild, distributed == nil {
            printError("warning: this regula is a debug build: its host code is unoptimized (on the project's machine a step "
                       + "takes up to twice as long), so these timings do not measure Regula. "
                       + "Run `swift run -c release regula bench` instead.")
        }
        let chain = rules.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        let elementType = DType(rawValue: dtype)!
        if let distributed {
            try runDistributed(distributed, chain: chain, elementType: elementType)
            return
        }
        let measurement = try failingClearly { () throws -> Measurement in
            let registry = try plugins.registry()
            let ruleList = try registry.rules(for: chain)
            let taken = Set(ruleList.flatMap { $0.hyperparameters.map(\.name) })
            let chosen = options.laid(over: Self.standardOptions.filter { taken.contains($0.key) })
            // The elementwise slots the parameters have: a slot bounded to other ranks (adafactor's vector-only
            // variance on matrices) holds nothing and moves no bytes.
            let rank = tensorShape?.count ?? 1
            let slots = ruleList.reduce(0) { total, rule in
                total + rule.stateSlots.filter { $0.shape == .elementwise && $0.ranks.contains(rank) }.count
            }
            let parameters = makeParameters(elementType)
            let optimizer = try Optimizer(parameters, rules: chain, defaults: chosen, choices: options.choices, registry: registry)
            if let threads { optimizer.threads = threads }
            optimizer.atomicSteps = !notAtomic
            var times: [UInt64] = []
            for step in 0..<(steps + 2) {
                let start = DispatchTime.now().uptimeNanoseconds
                try optimizer.step()
                let end = DispatchTime.now().uptimeNanoseconds
                if step >= 2 { times.append(end - start) }
            }
            // Each step reads the gradient and the parameter and writes the parameter, reads and writes every
            // slot, and reads the gradient once more when the first rule folds a reduction from it.
            let leadingReduction = ruleList.first.map { $0.reductions.isEmpty ? 0 : 1 } ?? 0
            let bytes = Double(elements * elementType.size * (3 + 2 * slots + leadingReduction))
            let spread = StepSpread(times)
            // Asked after the steps, and only when a rule's GEMM loaded it: a chain without matrix products never
            // maps OpenBLAS.
            let blas = HostServices.isBLASLoaded ? (HostServices.blasLibrary, HostServices.blasThreadCount) : (nil, nil)
            return Measurement(rules: chain, options: chosen, elements: elements, tensors: tensors, dtype: dtype,
                               steps: steps, threads: optimizer.threads, blasLibrary: blas.0, blasThreads: blas.1,
                               atomic: optimizer.atomicSteps,
                               journaled: optimizer.journalsSteps,
                               debugBuild: Self.isDebugBuild, nsPerElement: spread.median / Double(elements),
                               minNsPerElement: spread.fastest / Double(elements), p90NsPerElement: spread.p90 / Double(elements),
                               maxNsPerElement: spread.slowest / Double(elements),
                               gbPerS: bytes / spread.median, medianStepMs: spread.median / 1e6,
                               minStepMs: spread.fastest / 1e6, bytesPerElement: bytes / Double(elements))
        }
        try measurement.print(json: json)
    }

    /// The sizes `--shape` gives, or nil when it is absent or holds anything but sizes of at least 1.
    var tensorShape: [Int]? {
        guard let sizes = shape?.split(separator: ",", omittingEmptySubsequences: false).map({ Int($0.trimmingCharacters(in: .whitespaces)) }),
              sizes.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
        return sizes.map { $0! }
    }

    /// `tensors` parameters holding `elements` in total, each of `--shape` when given, with gradients, values in
    /// [-1, 1].
    func makeParameters(_ type: DType) -> [Parameter] {
        (0..<tensors).map { index in
            let count = elements / tensors + (index < elements % tensors ? 1 : 0)
            let values = (0..<count).map { Double(($0 &* 2_654_435_761 &+ index) % 2001) / 1000 - 1 }
            let gradient = values.map { $0 * 0.5 + 0.01 }
            switch type {
            case .float32:
                let parameter = try! Parameter("t\(index)", values: values.map(Float.init), shape: tensorShape ?? [count])
                try! parameter.setGradient(gradient.map(Float.init))
                return parameter
            case .float64:
                let parameter = try! Parameter("t\(index)", values: values, shape: tensorShape ?? [count])
                try! parameter.setGradient(gradient)
                return parameter
            }
        }
    }
}

/// The spread of a run's step times, in nanoseconds: the fastest, the median, the 90th percentile (nearest
/// rank: 9 in 10 steps took at most this) and the slowest. A median far above the fastest step says the steps
/// were held up (by other work on the machine, or by the host), which a median alone hides.
struct StepSpread {
    let fastest: Double, median: Double, p90: Double, slowest: Double

    /// The spread of `times`, which is not empty.
    init(_ times: [UInt64]) {
        let sorted = times.sorted().map { Double($0) }
        fastest = sorted[0]
        median = sorted[sorted.count / 2]
        p90 = sorted[(sorted.count * 9 + 9) / 10 - 1]
        slowest = sorted[sorted.count - 1]
    }
}

/// What `regula bench` measured.
struct Measurement: Codable, BenchReport {
    let rules: [String]
    let options: [String: Double]
    let elements: Int
    let tensors: Int
    let dtype: String
    let steps: Int
    let threads: Int
    /// The file OpenBLAS was loaded from and the threads each BLAS call had after the last step, when a rule's
    /// matrix products loaded it; nil (absent from the JSON) when none did.
    let blasLibrary: String?
    let blasThreads: Int?
    let atomic: Bool
    /// Whether each step journaled what it changes (an atomic step whose rules may fail).
    let journaled: Bool
    /// Whether the numbers come from an unoptimized build.
    let debugBuild: Bool
    /// The median step's nanoseconds per element, and the spread around it (``StepSpread``).
    let nsPerElement: Double
    let minNsPerElement: Double
    let p90NsPerElement: Double
    let maxNsPerElement: Double
    let gbPerS: Double
    let medianStepMs: Double
    let minStepMs: Double
    let bytesPerElement: Double

    enum CodingKeys: String, CodingKey {
        case rules, options, elements, tensors, dtype, steps, threads, atomic, journaled
        case blasLibrary = "blas_library", blasThreads = "blas_threads"
        case debugBuild = "debug_build"
        case nsPerElement = "ns_per_element", minNsPerElement = "min_ns_per_element"
        case p90NsPerElement = "p90_ns_per_element", maxNsPerElement = "max_ns_per_element", gbPerS = "gb_per_s", medianStepMs = "median_step_ms"
        case minStepMs = "min_step_ms", bytesPerElement = "bytes_per_element"
    }

    var table: String {
        let rows = BenchTable.setupRows(rules: rules, options: options, elements: elements, tensors: tensors, dtype: dtype) + [
            ("threads", "\(threads)"),
        ] + (blasLibrary.map { [("BLAS", "\($0) on \(blasThreads ?? 0) thread\(blasThreads == 1 ? "" : "s")")] } ?? []) + [
            ("atomic steps", !atomic ? "no" : journaled ? "yes (journaled)"
                : "yes (every rule declares it never fails: no journal needed)"),
            ("steps", "\(steps) timed (after 2 warm-up)"),
            ("median step", String(format: "%.3f ms (fastest %.3f ms)", medianStepMs, minStepMs)),
            ("ns per element", String(format: "%.3f median (fastest %.3f, p90 %.3f, slowest %.3f)", nsPerElement,
                                      minNsPerElement, p90NsPerElement, maxNsPerElement)),
            ("memory traffic", String(format: "%.2f GB/s (%.0f bytes per element)", gbPerS, bytesPerElement)),
        ]
        return BenchTable.render(rows, debugBuild: debugBuild)
    }
}

/// What `regula bench` measured, in one process or under mpirun: a table to read, or JSON for scripts.
protocol BenchReport: Encodable {
    /// The measurement as aligned rows (``BenchTable``).
    var table: String { get }
}

extension BenchReport {
    /// Prints one JSON object with its keys sorted, or the table.
    func print(json: Bool) throws {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            Swift.print(String(decoding: try encoder.encode(self), as: UTF8.self))
        } else {
            Swift.print(table)
        }
    }
}

/// How `regula bench` lays out its tables, in one process or under mpirun.
enum BenchTable {
    /// The rows every table starts with: what was timed.
    static func setupRows(rules: [String], options: [String: Double], elements: Int, tensors: Int, dtype: String) -> [(String, String)] {
        [("chain", rules.joined(separator: " > ")),
         ("options", options.keys.sorted().map { "\($0)=\(options[$0]!)" }.joined(separator: ", ")),
         ("elements", "\(elements) in \(tensors) tensor\(tensors == 1 ? "" : "s"), \(dtype)")]
    }

    /// Labels in a column as wide as the longest, then the values; a last row warns of a debug build.
    static func render(_ rows: [(String, String)], debugBuild: Bool) -> String {
        let rows = rows + (debugBuild ? [("build", "debug (unoptimized host): these timings do not measure Regula")] : [])
        let width = rows.map(\.0.count).max()!
        return rows.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
