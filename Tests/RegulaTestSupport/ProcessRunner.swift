import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    /// Exit status (or 128 + signal).
    public let status: Int32
    /// Everything it wrote on standard output.
    public let standardOutput: String
    /// Everything it wrote on standard error.
    public let standardError: String
    /// Whether it was stopped because it ran past its time limit.
    public var timedOut = false
}

/// Runs `executable` with `arguments`, the environment extended by `environment`, in `workingDirectory`
/// (the tests' own when nil), and waits for it; after `timeout` seconds, if given, it is terminated (SIGTERM)
/// and its output says so.
public func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                standardInput: String? = nil, workingDirectory: URL? = nil, timeout: Double? = nil) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = executable
    if let workingDirectory { process.currentDirectoryURL = workingDirectory }
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe(), error = Pipe(), input = Pipe()
    process.standardOutput = output
    process.standardError = error
    process.standardInput = input
    try process.run()
    if let standardInput { input.fileHandleForWriting.write(Data(standardInput.utf8)) }
    try input.fileHandleForWriting.close()
    // Read both pipes while the child runs, so neither fills up and blocks it.
    let errorBytes = DataBox(), reading = DispatchGroup()
    DispatchQueue.global().async(group: reading) { errorBytes.data = readToEnd(error.fileHandleForReading) }
    let deadline = DispatchWorkItem { [process] in if process.isRunning { errorBytes.timedOut = true; process.terminate() } }
    if let timeout { DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline) }
    let outputData = readToEnd(output.fileHandleForReading)
    process.waitUntilExit()
    reading.wait()
    deadline.cancel()
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return ProcessOutput(status: status,
                         standardOutput: String(decoding: outputData, as: UTF8.self),
                         standardError: String(decoding: errorBytes.data, as: UTF8.self), timedOut: errorBytes.timedOut)
}

/// Runs the `regula` executable built beside the tests.
public func regula(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutput {
    try run(TestPaths.regula, arguments, environment: environment)
}

/// Where the reader thread leaves standard error, and the deadline whether it struck.
private final class DataBox: @unchecked Sendable {
    var data: [UInt8] = []
    var timedOut = false
}

/// Everything left to read from `handle`, with read(2): Foundation's `readDataToEndOfFile()` leaks the
/// buffers it grows (LeakSanitizer reports them under `.ci/sanitizers`).
private func readToEnd(_ handle: FileHandle) -> [UInt8] {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            bytes += chunk[..<count]
        } else if count == 0 || errno != EINTR {
            return bytes
        }
    }
}
