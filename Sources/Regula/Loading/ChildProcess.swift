import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// A child process started with `posix_spawn`, whose standard output is read line by line, each line within a
/// deadline, and whose standard error is kept (its last few kilobytes) to explain how it ended.
///
/// Used to run plugin code that may crash, abort, call `exit` or never return: the parent only reads, waits
/// and, past a deadline, kills with `SIGKILL`.
package final class ChildProcess {
    /// What reading the next line gave.
    enum Event: Equatable {
        /// One line, without its newline.
        case line(String)
        /// Standard output was closed: the child ended (or closed it).
        case ended
        /// No complete line came within the deadline.
        case timedOut
    }

    /// How the child ended.
    package enum Termination: Equatable, Sendable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signalled(Int32)

        /// `exit status N` or `signal N (Name)`.
        package var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signalled(let signal): "signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }
    }

    private let pid: pid_t
    private var output: Int32
    private var errors: Int32
    private var pending: [UInt8] = []
    private var errorTail: [UInt8] = []
    private var termination: Termination?
    private static let tailLimit = 4096

    /// Starts `executable` with `arguments`, standard input from `/dev/null`, and this process's environment
    /// with `environment` laid over it. Swift's crash backtracer is turned off in the child (it is slow, and
    /// would bury the child's own last words).
    package init(executable: String, arguments: [String], environment: [String: String] = [:]) throws(ChildProcessError) {
        // Pipes that no child inherits but this one (as its standard output and error), even one another
        // thread starts meanwhile.
        let pipes = (0..<2).compactMap { _ in try? FileDescriptor.pipe(options: .closeOnExec) }
        guard pipes.count == 2 else {
            let words = errorText()
            for pipe in pipes { _ = (try? pipe.readEnd.close(), try? pipe.writeEnd.close()) }
            throw ChildProcessError(executable: executable, words: words)
        }
        let (reading, writing) = (pipes.map(\.readEnd.rawValue), pipes.map(\.writeEnd.rawValue))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writing[0], 1)
        posix_spawn_file_actions_adddup2(&actions, writing[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let settings = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
            .merging(environment) { $1 }
        let envp: [UnsafeMutablePointer<CChar>?] = settings.map { strdup("\($0.key)=\($0.value)") } + [nil]
        var child = pid_t()
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        (argv + envp).forEach { free($0) }
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
        writing.forEach { close($0) }
        guard status == 0 else {
            reading.forEach { close($0) }
            throw ChildProcessError(executable: executable, words: errorText(status))
        }
        pid = child
        (output, errors) = (reading[0], reading[1])
    }

    deinit {
        if termination == nil { _ = kill() }
        if output >= 0 { close(output) }
        if errors >= 0 { close(errors) }
    }

    /// The next line of standard output, waiting at most `seconds` for it.
    func nextLine(within seconds: Double) -> Event {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return .line(line)
            }
            if output < 0 {
                guard pending.isEmpty else {
                    defer { pending = [] }
                    return .line(String(decoding: pending, as: UTF8.self))
                }
                return .ended
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return .timedOut }
            pump(milliseconds: Int32(min(left * 1000 + 1, 60_000)))
        }
    }

    /// How a child that was read to its end came to end.
    package struct Outcome: Sendable {
        /// How the process ended.
        package var termination: Termination
        /// No line came within the deadline, so the child was killed.
        package var timedOut: Bool
        /// The last line the child wrote to standard error (``ChildProcess/lastErrorLine``).
        var lastWords: String?

        package init(termination: Termination, timedOut: Bool = false, lastWords: String? = nil) {
            self.termination = termination
            self.timedOut = timedOut
            self.lastWords = lastWords
        }

        /// The child exited with status 0 and answered in time.
        package var exitedCleanly: Bool { termination == .exited(0) && !timedOut }

        /// `; its last words: "…"`, or nothing.
        package var lastWordsClause: String { lastWords.map { "; its last words: \(quoted($0))" } ?? "" }
    }

    /// Hands each line of standard output to `handle` until the child closes it, or kills the child when no
    /// line comes within `seconds`; then waits (at most `seconds` more) for the child to end.
    package func readToEnd(lineWithin seconds: Double, _ handle: (String) -> Void) -> Outcome {
        var timedOut = false
        reading: while true {
            switch nextLine(within: seconds) {
            case .line(let line):
                handle(line)
            case .ended:
                break reading
            case .timedOut:
                timedOut = true
                break reading
            }
        }
        return Outcome(termination: timedOut ? kill() : finish(within: seconds), timedOut: timedOut, lastWords: lastErrorLine)
    }

    /// Waits at most `seconds` for the child to close its output and end, reading what is left; past that,
    /// kills it.
    package func finish(within seconds: Double) -> Termination {
        if let termination { return termination }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while output >= 0 || errors >= 0 {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return kill() }
            pump(milliseconds: Int32(min(left * 1000 + 1, 60_000)))
            pending = []
        }
        while deadline.timeIntervalSinceNow > 0 {
            if let ended = reap(blocking: false) { return ended }
            usleep(1000)
        }
        return kill()
    }

    /// Kills the child with `SIGKILL` and waits for it.
    @discardableResult
    func kill() -> Termination {
        if let termination { return termination }
        Glibc.kill(pid, SIGKILL)
        return reap(blocking: true) ?? .signalled(SIGKILL)
    }

    /// The last non-empty line the child wrote to standard error, at most 300 characters, or nil.
    var lastErrorLine: String? {
        let lines = String(decoding: errorTail, as: UTF8.self).split(separator: "\n")
        guard let last = lines.last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { return nil }
        return String(last.trimmingCharacters(in: .whitespaces).prefix(300))
    }

    /// Waits up to `milliseconds` for either pipe, and reads what is there.
    private func pump(milliseconds: Int32) {
        var fds = [pollfd(fd: output, events: Int16(POLLIN), revents: 0), pollfd(fd: errors, events: Int16(POLLIN), revents: 0)]
        guard poll(&fds, 2, milliseconds) > 0 else { return }
        if fds[0].revents != 0 { readSome(from: &output) { pending += $0 } }
        if fds[1].revents != 0 {
            readSome(from: &errors) {
                errorTail += $0
                if errorTail.count > Self.tailLimit { errorTail.removeFirst(errorTail.count - Self.tailLimit) }
            }
        }
    }

    private func readSome(from descriptor: inout Int32, into sink: ([UInt8]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        do {
            let count = try buffer.withUnsafeMutableBytes { try FileDescriptor(rawValue: descriptor).read(into: $0) }
            if count > 0 { return sink(Array(buffer[..<count])) }
        } catch Errno.resourceTemporarilyUnavailable {
            return
        } catch {}
        close(descriptor)
        descriptor = -1
    }

    private func reap(blocking: Bool) -> Termination? {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
            if result < 0, errno == EINTR { continue }
            guard result == pid else { return nil }
            break
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        let ended: Termination = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
        termination = ended
        return ended
    }
}

/// A child process could not be started.
package struct ChildProcessError: Error, CustomStringConvertible {
    /// The program.
    package let executable: String
    /// Why, in the system's words.
    package let words: String
    /// `cannot start EXECUTABLE: WORDS`.
    package var description: String { "cannot start \(executable): \(words)" }
}

/// The child's side of a line protocol on standard output: the original standard output is kept for the
/// protocol lines, and file descriptor 1 is pointed at standard error, so whatever plugin code prints cannot
/// be mistaken for them.
package struct ProtocolChannel {
    private let descriptor: Int32

    /// Moves standard output aside for the protocol.
    package init() {
        fflush(nil)
        descriptor = dup(1)
        dup2(2, 1)
    }

    /// Writes `line` and a newline, unbuffered: it is out before anything after it can crash.
    package func send(_ line: String) {
        _ = try? FileDescriptor(rawValue: descriptor).writeAll((line + "\n").utf8)
    }
}

extension ChildProcess {
    /// The retry-and-blame loop of work that may crash, end or hang the process it runs in: runs it in a new
    /// child process each time (`attempt`, handed the pieces blamed so far, which it leaves out) until
    /// `cleanRuns` runs in a row are clean; after each run that is not, `blame` names the piece of the work
    /// that run failed on, or nil to stop there.
    /// - Returns: The last run, whether the loop ended in clean runs, and every piece blamed, in order.
    package static func retry<Run, Piece>(
        cleanRuns required: Int = 1, attempt: (_ blamed: [Piece]) throws -> Run, isClean: (Run) -> Bool,
        blame: (Run, _ blamed: [Piece]) throws -> Piece?
    ) rethrows -> (last: Run, clean: Bool, blamed: [Piece]) {
        var blamed: [Piece] = [], cleanRuns = 0
        while true {
            let run = try attempt(blamed)
            if isClean(run) {
                cleanRuns += 1
                if cleanRuns >= required { return (run, true, blamed) }
                continue
            }
            cleanRuns = 0
            guard let piece = try blame(run, blamed) else { return (run, false, blamed) }
            blamed.append(piece)
        }
    }
}
