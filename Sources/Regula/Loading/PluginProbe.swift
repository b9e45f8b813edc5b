import Foundation

/// Loads plugin files in a separate process before this one does, so that a file that crashes, aborts, ends
/// or hangs a process while it is loaded is refused with words instead of taking this process down.
///
/// The probe process is any program that answers ``serve(_:)`` (the `regula` tool does, as the hidden
/// command `regula probe FILE…`). It loads each file exactly as ``RuleRegistry/loadPlugin(at:onConflict:)``
/// does, reporting on its standard output when it begins and ends each file. A file is refused when the
/// process stops answering while loading it (``timeout``), or dies or exits while loading it as the first
/// file of a fresh process (a file that crashes after others is tried again first), so that one bad file
/// cannot get a good one blamed. A file that loads there is then
/// loaded here, if it is still the same file (device, inode, size and modification time).
///
/// ```swift
/// let probe = PluginProbe(executable: "/usr/local/bin/regula", arguments: ["probe", "--"])
/// let registry = try RuleRegistry.standard(probe: probe)
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
    /// What happened to each file version probed: nil if it loaded, else what went wrong.
    private var verdicts: [FileStamp: String?] = [:]

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

    /// Refuses `file` unless its version loaded in a probe process; probes it first if needed.
    func vet(_ file: PluginFile) throws(PluginLoadError) {
        if lock.withLock({ verdicts[file.stamp] }) == nil { runProbes([file.path]) }
        switch lock.withLock({ verdicts[file.stamp] }) {
        case .some(.none):
            return
        case .some(.some(let words)):
            throw PluginLoadError(path: file.path, reason: .probeFailed(words))
        case .none:
            throw PluginLoadError(path: file.path, reason: .probeFailed("it changed while a probe process was loading it; try again"))
        }
    }

    // MARK: - The probe process's side

    /// Loads each file of `paths` in turn, as a probe process: writes `begin INDEX STAMP` before each and
    /// `done INDEX` after, then `end`, on standard output (which plugin code cannot write to meanwhile), and
    /// exits with status 0 so that the plugins' finalizers run too.
    public static func serve(_ paths: [String]) -> Never {
        let channel = ProtocolChannel()
        for (index, path) in paths.enumerated() {
            let stamp = FileStamp(path: resolved(path)).map { "\($0)" } ?? "-"
            channel.send("begin\t\(index)\t\(stamp)")
            _ = try? RuleRegistry().loadPlugin(at: path)
            channel.send("done\t\(index)")
        }
        channel.send("end")
        exit(0)
    }

    // MARK: - Running probe processes

    /// One run of the probe process over some files, as far as it got.
    private struct Run {
        var loaded: [(index: Int, stamp: FileStamp?)] = []
        var current: (index: Int, stamp: FileStamp?)?
        var finished = false
        var timedOut = false
        var termination: ChildProcess.Termination = .exited(0)
        var lastWords: String?
    }

    /// Probes `paths`, recording a verdict for every file version it reaches.
    private func runProbes(_ paths: [String]) {
        var start = 0
        var oneByOne = false
        while start < paths.count {
            let end = oneByOne ? start + 1 : paths.count
            let run = runProbe(paths, from: start, to: end)
            if run.finished && run.termination == .exited(0) && !run.timedOut {
                record(run.loaded.map { ($0.stamp, nil) })
                start = end
            } else if run.finished {
                // Everything loaded, then the process failed on its way out: find the culprit alone.
                if end - start == 1 { record(run.loaded.map { ($0.stamp, failure(run, atExit: true)) }) }
                start = end - start == 1 ? end : start
                oneByOne = true
            } else if let suspect = run.current ?? run.loaded.last {
                // The file being loaded, or the last one loaded if the process died between files, is blamed
                // when it was the first file of the process or stopped answering; otherwise it goes first in
                // a fresh process, so that a file that broke the process for the next one is not missed.
                record(run.loaded.filter { $0.index != suspect.index }.map { ($0.stamp, nil) })
                if suspect.index == start || (run.timedOut && run.current != nil) {
                    record([(suspect.stamp, failure(run, atExit: false))])
                    start = suspect.index + 1
                } else {
                    start = suspect.index
                }
            } else {
                let words = "the probe process (\(executable)) ended with \(run.termination) before loading anything"
                    + (run.lastWords.map { ": \($0)" } ?? "")
                record(paths[start...].map { (FileStamp(path: resolved($0)), words) })
                return
            }
        }
    }

    /// Runs one probe process over `paths[from..<to]`.
    private func runProbe(_ paths: [String], from start: Int, to end: Int) -> Run {
        var run = Run()
        let child: ChildProcess
        do {
            child = try ChildProcess(executable: executable, arguments: arguments + paths[start..<end])
        } catch {
            run.termination = .exited(127)
            run.lastWords = "\(error)"
            return run
        }
        reading: while true {
            switch child.nextLine(within: timeout) {
            case .line(let line):
                let fields = line.split(separator: "\t")
                guard let tag = fields.first else { continue }
                let index = fields.count > 1 ? Int(fields[1]).map { $0 + start } : nil
                if tag == "begin", let index, fields.count == 3 {
                    run.current = (index, FileStamp(fields[2]))
                } else if tag == "done", let current = run.current, index == current.index {
                    run.loaded.append(current)
                    run.current = nil
                } else if tag == "end", run.current == nil {
                    run.finished = true
                }
            case .ended:
                break reading
            case .timedOut:
                run.timedOut = true
                child.kill()
                break reading
            }
        }
        run.termination = run.timedOut ? child.kill() : child.finish(within: timeout)
        run.lastWords = child.lastErrorLine
        return run
    }

    /// What a probe process that died while loading a file (or, `atExit`, while exiting) did, in words.
    private func failure(_ run: Run, atExit: Bool) -> String {
        let what: String
        if run.timedOut {
            what = "did not finish \(atExit ? "exiting" : "loading it") within \(format(timeout)) s (a constructor or "
                + "finalizer that never returns?) and was killed"
        } else if case .signalled = run.termination {
            what = "crashed with \(run.termination)\(atExit ? " when it exited (in the plugin's finalizers)" : "")"
        } else {
            what = "ended with \(run.termination)\(atExit ? " when it exited" : " before loading it finished (the plugin called exit?)")"
        }
        return "a probe process that loaded it \(what)" + (run.lastWords.map { "; its last words: \(quoted($0))" } ?? "")
    }

    private func record(_ outcomes: [(FileStamp?, String?)]) {
        lock.withLock {
            for case let (stamp?, words) in outcomes { verdicts[stamp] = .some(words) }
        }
    }
}

/// `path` made absolute with its symbolic links resolved, as ``PluginLoader`` opens it.
func resolved(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
}
