import Foundation

/// Loads plugin files in a separate process before this one does, so that a file that crashes, aborts, ends
/// or hangs a process while it is loaded is refused with words instead of taking this process down.
///
/// The probe process is any program that answers ``serve(_:)`` (the `regula` tool does, as the hidden
/// command `regula probe FILE…`). It loads each file exactly as ``RuleRegistry/loadPlugin(at:onConflict:)``
/// does, after the plugins this process has already loaded, reporting on its standard output when it begins
/// and ends each file. A file is refused when the process stops answering while loading it (``timeout``),
/// crashes, aborts or exits while loading it, or crashes on its way out because of it (finalizers run at
/// exit). The files of a run are accepted only once three runs of all of them in a row, each in a new process,
/// exit included, succeed (damaged code can crash one process and spare another), and are then loaded here in
/// the same order, each only while it is still the version probed (device, inode, size and modification
/// time), so this process meets no state that a probe process did not.
///
/// A program can be its own probe (Docs/ABI.md shows it whole):
///
/// ```swift
/// if CommandLine.arguments.dropFirst().first == "--probe" {    // started as "<program> --probe FILE…"
///     PluginProbe.serve(Array(CommandLine.arguments.dropFirst(2)))
/// }
/// let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
/// let registry = try RuleRegistry.standard(probe: PluginProbe(executable: me, arguments: ["--probe"]))
/// ```
///
/// A probe catches what happens while a plugin is loaded (its constructors, its entry function, the host
/// reading its description); it cannot catch what its kernels do later. Safe to use from several threads.
public final class PluginProbe: @unchecked Sendable {
    /// The probe program.
    public let executable: String
    /// Arguments before the files.
    public let arguments: [String]
    /// Seconds one file may take to load before the probe is killed and the file refused.
    public let timeout: Double

    private let lock = NSLock()
    /// What a probe process found of one file version.
    private struct Verdict {
        /// Nil when it loaded; else what went wrong.
        var refusal: String?
        /// What it declares, as the probe process that loaded it reported.
        var report: ProbeReport?
        /// The fingerprint of the bytes that process loaded (``PluginFile/fingerprint``).
        var fingerprint: UInt64?
    }
    /// The verdict on each file version probed.
    private var verdicts: [FileStamp: Verdict] = [:]

    /// A probe that runs `executable` with `arguments` followed by the files.
    public init(executable: String, arguments: [String] = [], timeout: Double = 10) {
        self.executable = executable
        self.arguments = arguments
        self.timeout = timeout
    }

    /// Loads, in as few probe processes as it takes, every file of `paths` whose current version has not been
    /// probed yet; the verdicts are kept for the loads that follow (a registry probes a folder's files at once).
    public func probe(_ paths: [String]) {
        let fresh = paths.filter { path in
            guard let stamp = FileStamp(path: resolved(path)) else { return false }
            return lock.withLock { verdicts[stamp] == nil }
        }
        if !fresh.isEmpty { runProbes(fresh) }
    }

    /// What `file` declares, as the probe process that loaded it reported; refused like ``vet(_:)`` when it
    /// did not load there. Nothing of the file is loaded into this process.
    func describe(_ file: PluginFile) throws(RegistryError) -> DescriptionReader.Contents {
        try vet(file)
        guard let report = lock.withLock({ verdicts[file.stamp]?.report }) else {
            throw RegistryError(path: file.path, reason: .probeFailed("the probe process (\(executable)) loaded it but did not describe it"))
        }
        return try report.contents()
    }

    /// Refuses `file` unless its version loaded in a probe process; probes it first if needed.
    func vet(_ file: PluginFile) throws(RegistryError) {
        if lock.withLock({ verdicts[file.stamp] }) == nil { runProbes([file.path]) }
        switch lock.withLock({ verdicts[file.stamp] }) {
        case .some(let verdict) where verdict.refusal == nil:
            if let probed = verdict.fingerprint, probed != file.fingerprint {
                throw RegistryError(path: file.path, reason: .probeFailed(
                    "its bytes are not the ones the probe process loaded (it was rewritten in place since?); try again once it is complete"))
            }
            return
        case .some(let verdict):
            throw RegistryError(path: file.path, reason: .probeFailed(verdict.refusal ?? ""))
        case .none:
            throw RegistryError(path: file.path, reason: .probeFailed("it changed while a probe process was loading it; try again"))
        }
    }

    // MARK: - The probe process's side

    /// Loads each file of `paths` in turn, as a probe process: writes `begin INDEX STAMP` before each, then
    /// `describe INDEX FINGERPRINT JSON` (the bytes it loaded, and what they declare or why they were refused)
    /// and `done INDEX` after it, then `end`,
    /// on standard output (which plugin code cannot write to meanwhile), and exits with status 0 so that the
    /// plugins' finalizers run too.
    ///
    /// After each file, the Swift runtime is made to read every image's metadata sections, as the next
    /// dynamic cast or type lookup of the host will: a plugin whose image constructor registered damaged
    /// sections crashes this process, not the host, later.
    public static func serve(_ paths: [String]) -> Never {
        let channel = ProtocolChannel()
        for (index, path) in paths.enumerated() {
            let stamp = FileStamp(path: resolved(path)).map { "\($0)" } ?? "-"
            channel.send("begin\t\(index)\t\(stamp)")
            let report = ProbeReport { () throws(RegistryError) in try PluginLoader.contents(inFileAt: path) }
            SwiftMetadataWalk.run()
            let fingerprint = SharedObject.fingerprint(ofLoaded: resolved(path)).map { String($0) } ?? "-"
            channel.send("describe\t\(index)\t\(fingerprint)\t\(report.line)")
            channel.send("done\t\(index)")
        }
        channel.send("end")
        exit(0)
    }

    // MARK: - Running probe processes

    /// One run of the probe process, as far as it got; indices count the files probed, after the prefix.
    private struct Run {
        var loaded: [(index: Int, stamp: FileStamp?)] = []
        var reports: [Int: (fingerprint: UInt64?, report: ProbeReport?)] = [:]
        var current: (index: Int, stamp: FileStamp?)?
        var diedInPrefix = false
        var finished = false
        var outcome = ChildProcess.Outcome(termination: .exited(0))

        /// Every file loaded and the process exited with status 0.
        var clean: Bool { finished && outcome.exitedCleanly }
    }

    /// Whole runs in a row, each in a new process, that a set of files must pass before they are accepted.
    /// Damaged code can crash one process and not the next, depending on where the system placed things in
    /// memory (a write through a damaged address lands in a mapping in one process and in a hole in another):
    /// a damaged copy of `sgd` that survived 3 of 40 probe processes here passes three runs in a row about 4
    /// times in 10,000. A run of the built-ins takes a few milliseconds.
    static let cleanRunsRequired = 3

    /// Probes `paths`, recording a verdict for every file version.
    ///
    /// Each probe process first loads what this process has already loaded (``SharedObject/loadedFiles``),
    /// then the files still in the running, in order, so that its state is the one this process will be in.
    /// A file is recorded as loading only when ``cleanRunsRequired`` whole runs in a row, exit included,
    /// succeed: the load this process then repeats. Until then each failed run refuses one file (``blame(_:among:prefix:)``)
    /// and the rest are probed again.
    private func runProbes(_ paths: [String]) {
        let prefix = SharedObject.loadedFiles.filter { FileStamp(path: $0.path) == $0.stamp }.map(\.path)
        func remaining(_ blamed: [(path: String, words: String)]) -> [String] {
            var left = paths
            for blame in blamed { left.remove(at: left.firstIndex(of: blame.path)!) }
            return left
        }
        let result = ChildProcess.retry(cleanRuns: Self.cleanRunsRequired, attempt: { blamed in
            runProbe(prefix: prefix, files: remaining(blamed))
        }, isClean: \.clean, blame: { run, blamed in
            blame(run, among: remaining(blamed), prefix: prefix)
        })
        record(result.blamed.map { (FileStamp(path: resolved($0.path)), Verdict(refusal: $0.words)) })
        guard result.clean else {
            let run = result.last
            let words = run.diedInPrefix
                ? "a probe process crashed while loading the plugins already loaded in this process, before it"
                : "the probe process (\(executable)) ended with \(run.outcome.termination) before loading anything"
            let refusal = words + (run.outcome.lastWords.map { ": \($0)" } ?? "")
            return record(remaining(result.blamed).map { (FileStamp(path: resolved($0)), Verdict(refusal: refusal)) })
        }
        record(result.last.loaded.map { loaded in
            let said = result.last.reports[loaded.index]
            return (loaded.stamp, Verdict(report: said?.report, fingerprint: said?.fingerprint))
        })
    }

    /// The file of `candidates` that a failed run is blamed on, and why: the file that stopped answering; the
    /// one being loaded if it is the first of the run or fails alone too (else it is refused as failing only
    /// after the others); or, for a run that failed on its way out, the first file that does so alone (else
    /// the last). Nil when the run died before loading any of them.
    private func blame(_ run: Run, among candidates: [String], prefix: [String]) -> (path: String, words: String)? {
        guard !run.diedInPrefix, run.finished || run.current != nil || !run.loaded.isEmpty else { return nil }
        if let current = run.current, run.outcome.timedOut || current.index == 0 {
            return (candidates[current.index], failure(run, atExit: false))
        }
        if !run.finished, let suspect = run.current ?? run.loaded.last {
            let alone = runProbe(prefix: prefix, files: [candidates[suspect.index]])
            return (candidates[suspect.index], alone.clean
                ? failure(run, atExit: false) + " after other plugins were loaded in it (alone, it loads)"
                : failure(alone, atExit: alone.finished))
        }
        let alone = candidates.lazy.map { ($0, self.runProbe(prefix: prefix, files: [$0])) }.first { !$0.1.clean }
        return alone.map { ($0.0, failure($0.1, atExit: $0.1.finished)) }
            ?? (candidates[candidates.count - 1], failure(run, atExit: true) + " with the others loaded (none fails alone)")
    }

    /// Runs one probe process over `prefix` and then `files`.
    private func runProbe(prefix: [String], files: [String]) -> Run {
        var run = Run()
        guard !files.isEmpty else {
            run.finished = true
            return run
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: executable, arguments: arguments + prefix + files)
        } catch {
            run.outcome = ChildProcess.Outcome(termination: .exited(127), lastWords: "\(error)")
            return run
        }
        run.outcome = child.readToEnd(lineWithin: timeout) { line in
            let fields = line.split(separator: "\t", maxSplits: 3)
            guard let tag = fields.first else { return }
            let index = fields.count > 1 ? Int(fields[1]).map { $0 - prefix.count } : nil
            if tag == "begin", let index, fields.count == 3 {
                run.current = (index, FileStamp(fields[2]))
            } else if tag == "describe", let current = run.current, index == current.index, fields.count == 4 {
                run.reports[current.index] = (UInt64(fields[2]), ProbeReport(line: fields[3]))
            } else if tag == "done", let current = run.current, index == current.index {
                if current.index >= 0 { run.loaded.append(current) }
                run.current = nil
            } else if tag == "end", run.current == nil {
                run.finished = true
            }
        }
        if let current = run.current, current.index < 0 {
            run.diedInPrefix = true
            run.current = nil
        }
        return run
    }

    /// What a probe process that died while loading a file (or, `atExit`, while exiting) did, in words.
    private func failure(_ run: Run, atExit: Bool) -> String {
        let what: String
        let outcome = run.outcome
        if outcome.timedOut {
            what = "did not finish \(atExit ? "exiting" : "loading it") within \(format(timeout)) s (a constructor or "
                + "finalizer that never returns?) and was killed"
        } else if case .signalled = outcome.termination {
            what = "crashed with \(outcome.termination)\(atExit ? " when it exited (in the plugin's finalizers)" : "")"
        } else {
            what = "ended with \(outcome.termination)\(atExit ? " when it exited" : " before loading it finished (the plugin called exit?)")"
        }
        return "a probe process that loaded it \(what)" + outcome.lastWordsClause
    }

    private func record(_ outcomes: [(FileStamp?, Verdict)]) {
        lock.withLock {
            for case let (stamp?, verdict) in outcomes { verdicts[stamp] = verdict }
        }
    }
}

/// `path` made absolute with its symbolic links resolved, as ``PluginLoader`` opens it.
func resolved(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
}
