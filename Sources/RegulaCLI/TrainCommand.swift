import ArgumentParser
import Foundation
import Regula
import RegulaDistributed

/// `regula train`: the main job. L1-regularized logistic regression on real data and a sparse regression
/// with a known answer, comparing the seed's subgradient L1 chain with the proximal one, and a small network.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train L1-regularized models, comparing the subgradient L1 chain with the proximal one, and a small network.",
        discussion: """
            With no options: logistic regression on the embedded breast-cancer data (569 × 30) and a synthetic \
            sparse regression with 5 known non-zero coefficients, each trained by `l1 > sgd` (the seed's \
            subgradient) and by `sgd > prox_l1` (proximal), side by side: final loss, accuracy or support \
            recovered, and how many weights are exactly zero. Third, a multilayer perceptron (64 → 128 → 10, \
            softmax cross-entropy) on the embedded digits data (1797 8 × 8 images), trained by `adamw` (lr 0.01, \
            weight_decay 0.01 on the two weight matrices) on four fifths of each digit and tested on the fifth held \
            out; --rules and --option choose the L1 problems' chains only. --checkpoint and --resume name one file per \
            problem and chain: run.safetensors stands for run.logistic.subgradient.safetensors, \
            run.sparse.proximal.safetensors and so on (without the chain part when --rules gives one chain).

            Under mpirun, --distributed replicated|sharded trains on the ranks of the job: each rank computes \
            the gradient of its share of the rows, the ranks average them, and every rank steps the weights \
            (replicated) or its share of them (sharded). Rank 0 prints the same table as one process and \
            writes --csv, --plot and --checkpoint (Docs/DISTRIBUTED.md).
            """)

    @Option(help: "Train this one chain instead of the two compared, e.g. l1,momentum,sgd.")
    var rules: String?

    @OptionGroup var options: HyperparameterOptions

    // .unconditional: "--epochs -3" is a value (refused by validate), not a missing one followed by an option.
    @Option(parsing: .unconditional,
            help: "Epochs (full passes over the data) to train each problem in total, at least 1 (default: 500, the network 30).")
    var epochs: Int?

    @Option(help: "A CSV of numeric features with a 0/1 label in the last column, instead of the embedded data.")
    var data: String?

    @Option(help: "Save each run's optimizer here after training (safetensors).")
    var checkpoint: String?

    @Option(help: "Continue each run from this checkpoint, up to --epochs in total, with the options it saved (no --option).")
    var resume: String?

    @Option(help: "Write the loss curves here (CSV: problem, run, epoch, loss, zero_weights).")
    var csv: String?

    @Option(help: "Draw the loss and sparsity curves here (SVG).")
    var plot: String?

    @Option(help: "Train on the ranks of an MPI job started by mpirun: replicated or sharded.")
    var distributed: DistributedOptimizer.Mode?

    @OptionGroup var plugins: PluginOptions

    @OptionGroup var stepTimeout: StepTimeoutOption

    /// Used unless given with --option.
    static let standardOptions = ["lr": 0.1, "weight_decay1": 0.02, "momentum": 0.9]

    func validate() throws {
        if let epochs, epochs < 1 { throw ValidationError("--epochs is \(epochs); it must be at least 1") }
        // A checkpoint restores the options it was saved with, so an --option beside --resume would be replaced
        // without a word; refuse the mix instead of letting either win silently.
        if resume != nil, let first = options.values.first {
            throw ValidationError("--option \(first) cannot be given with --resume: a resumed run continues with the options "
                + "saved in its checkpoint, which would replace it; resume without --option (or train afresh with it)")
        }
    }

    func run() throws {
        stepTimeout.start()
        try failingClearly {
            if distributed == nil, let job = MPIJob.fromEnvironment(), job.size > 1 {
                throw CommandError("this process is rank \(job.rank) of an mpirun job of \(job.size) processes, but was not given "
                    + "--distributed; give every rank the same --distributed replicated|sharded, or run regula train without mpirun")
            }
            let placement = try TrainingPlacement(distributed)
            // First, before any other message between the ranks: the same command line on every rank.
            try placement.agreeOnSettings(settings)
            do {
                try train(registry: try plugins.registry(), placement: placement)
            } catch let error as DistributedError where error.rank != nil && !placement.isLeader {
                // One rank's failure, which the ranks shared before stopping: rank 0 says it for the job. A
                // disagreement between the ranks (rank nil) is every rank's, and each rank says it.
                throw ExitCode.failure
            }
        }
    }

    /// What every rank of a job must be given alike: each option's value, or for the files only rank 0
    /// writes or each rank may read from its own copy, whether it is given.
    private var settings: [(name: String, value: String)] {
        func given(_ path: String?) -> String { path == nil ? "not given" : "given" }
        return [("--distributed", distributed.map { "\($0)" } ?? "not given"), ("--epochs", epochs.map(String.init) ?? "not given"),
                ("--rules", rules ?? "not given"), options.setting,
                ("--data", given(data)), ("--checkpoint", given(checkpoint)), ("--resume", given(resume)),
                ("--csv", given(csv)), ("--plot", given(plot))] + plugins.settings
    }

    /// The work of ``run()``: on one process, or on every rank of an MPI job, which then agree on every
    /// refusal before anything trains.
    private func train(registry: RuleRegistry, placement: TrainingPlacement) throws {
        // What each rank checks on its own (rank 0 alone checks the files it will write), then shares.
        let (problems, csvFile, plotFile) = try placement.agreeing { () throws -> ([(key: String, problem: TrainingProblem, runs: [TrainingRun])], OutputFile?, OutputFile?) in
            if (try? registry.rule(named: "prox_l1")) == nil, let folder = PluginSearchPath.builtinDirectory() {
                try registry.loadPlugin(at: folder + "/\(PluginSearchPath.examplePrefix)ProxL1.so")
            }
            let chosen = options.laid(over: Self.standardOptions)
            let given = Set(options.given.keys).union(options.choices.keys)
            let runs: [TrainingRun]
            if let rules {
                let chain = rules.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
                runs = [TrainingRun(label: "chain", rules: chain, options: chosen, choices: options.choices)]
            } else {
                runs = [TrainingRun(label: "subgradient", rules: ["l1", "sgd"], options: chosen, choices: options.choices),
                        TrainingRun(label: "proximal", rules: ["sgd", "prox_l1"], options: chosen, choices: options.choices)]
            }
            // An option given by hand that no chain takes is an error (a typo, most likely), not silently dropped.
            var allRules: [String] = []
            for rule in runs.flatMap(\.rules) where !allRules.contains(rule) { allRules.append(rule) }
            let taken = Set(try registry.rules(for: allRules).flatMap { $0.hyperparameters.map(\.name) })
            for name in given.sorted() where !taken.contains(name) {
                throw OptimizerError.unknownHyperparameter(name, group: nil, suggestion: closestName(to: name, among: taken),
                                                           accepted: taken.sorted(), rules: allRules)
            }
            let logistic = LogisticRegression(data: try data.map { try Dataset.load(URL(fileURLWithPath: $0)) } ?? Dataset.breastCancer())
            let problems: [(key: String, problem: TrainingProblem, runs: [TrainingRun])] =
                ([("logistic", logistic), ("sparse", SparseRegression()), ("mlp", Perceptron(data: try Dataset.digits()))]
                 as [(String, TrainingProblem)]).map { ($0.0, $0.1, $0.1.runs ?? runs) }
            // Output files that cannot be written are refused before the first epoch.
            let csvFile = csv.map { OutputFile(path: $0, option: "--csv") }
            let plotFile = plot.map { OutputFile(path: $0, option: "--plot") }
            if placement.isLeader {
                for (key, _, runs) in problems {
                    for run in runs {
                        try checkpoint.map { try OutputFile(path: file(for: $0, problem: key, run: run.label, runs: runs.count).path,
                                                            option: "--checkpoint").check() }
                    }
                }
                try csvFile?.check()
                try plotFile?.check()
            }
            return (problems, csvFile, plotFile)
        }
        // Each rank reads --data itself: a file that differs between machines would split rows that do not exist.
        try placement.agreeOnSettings(problems.map { ("the rows × columns of problem \(quoted($0.key))",
                                                      "\($0.problem.rowCount) × \($0.problem.weightCount)") })

        // Checkpoints that do not fit or are already past --epochs are refused before the first epoch too.
        var prepared: [(key: String, title: String, weights: Int, epochs: Int, runs: [(PreparedRun, checkpoint: URL?)])] = []
        for (key, problem, runs) in problems {
            let epochs = self.epochs ?? problem.standardEpochs
            var ready: [(PreparedRun, checkpoint: URL?)] = []
            for run in runs {
                let saveTo = checkpoint.map { file(for: $0, problem: key, run: run.label, runs: runs.count) }
                let resumeFrom = resume.map { file(for: $0, problem: key, run: run.label, runs: runs.count) }
                let session = try run.prepare(problem, registry: registry, resume: resumeFrom, placement: placement)
                if let resumeFrom, session.start >= epochs {
                    throw CommandError("--resume \(resumeFrom.path) is already at epoch \(session.start), and --epochs \(epochs) "
                                            + "asks for no more; give --epochs greater than \(session.start) to train on")
                }
                ready.append((session, saveTo))
            }
            prepared.append((key, problem.title, problem.weightCount, epochs, ready))
        }

        var finished: [(title: String, results: [TrainingRun.Result], weights: Int)] = []
        for problem in prepared {
            var results: [TrainingRun.Result] = []
            for (session, saveTo) in problem.runs {
                let reporter = placement.isLeader ? ProgressReporter(title: "\(problem.key) / \(session.run.label)", total: problem.epochs) : nil
                results.append(try session.train(epochs: problem.epochs, checkpoint: saveTo, progress: { reporter?.update($0) }))
            }
            finished.append((problem.title, results, problem.weights))
            if placement.isLeader { printTable(problem.title, results, weights: problem.weights) }
        }
        guard placement.isLeader else { return }
        let saved = prepared.flatMap { $0.runs.compactMap { $0.checkpoint?.path } }
        if !saved.isEmpty { print("\ncheckpoints: " + saved.joined(separator: ", ")) }
        if let csvFile {
            try csvFile.write(csvText(finished))
            print("curves: \(csvFile.path)")
        }
        if let plotFile {
            try plotFile.write(LossChart.svg(finished))
            print("chart: \(plotFile.path)")
        }
    }

    /// `path` for one problem and run: the problem always, the run's label when several chains run.
    private func file(for path: String, problem: String, run: String, runs: Int) -> URL {
        let url = URL(fileURLWithPath: path)
        let stem = url.deletingPathExtension().lastPathComponent, suffix = url.pathExtension
        let name = [stem, problem, runs > 1 ? run : nil].compactMap { $0 }.joined(separator: ".") + (suffix.isEmpty ? "" : ".\(suffix)")
        return url.deletingLastPathComponent().appendingPathComponent(name)
    }

    private func printTable(_ title: String, _ results: [TrainingRun.Result], weights: Int) {
        print("\n\(title)")
        var rows: [(String, [String])] = [
            ("chain", results.map(\.chain)),
            ("final loss", results.map { String(format: "%.5f", $0.loss) }),
        ]
        for (index, (label, _)) in (results.first?.report ?? []).enumerated() {
            rows.append((label, results.map { $0.report[index].1 }))
        }
        rows.append(("exactly-zero weights", results.map { "\($0.zeros) of \(weights)" }))
        if results.contains(where: { $0.skipped > 0 }) {
            rows.append(("skipped steps (undone)", results.map { "\($0.skipped) of \($0.stepsTaken)" }))
        }
        if results.contains(where: { $0.resumedFrom > 0 }) {
            rows.append(("resumed at epoch", results.map { String($0.resumedFrom) }))
        }
        let first = rows.map(\.0.count).max()!
        let widths = results.indices.map { column in max(rows.map { $0.1[column].count }.max()!, results[column].label.count) }
        func line(_ head: String, _ cells: [String]) -> String {
            head.padding(toLength: first, withPad: " ", startingAt: 0) + "  "
                + zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        print(line("", results.map(\.label)))
        for (head, cells) in rows { print(line(head, cells)) }
    }

    private func csvText(_ problems: [(title: String, results: [TrainingRun.Result], weights: Int)]) -> String {
        var text = "problem,run,epoch,loss,zero_weights\n"
        for problem in problems {
            for result in problem.results {
                for point in result.curve {
                    text += "\"\(problem.title)\",\(result.label),\(point.epoch),\(point.loss),\(point.zeros)\n"
                }
            }
        }
        return text
    }
}
