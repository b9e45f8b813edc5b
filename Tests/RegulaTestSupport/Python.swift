import Foundation

/// Python 3 on this machine, for tests that check Regula's files against Python's own readers.
public enum Python {
    /// Whether `python3` can import `safetensors.numpy` (`.ci/run` installs it; a test that needs it is
    /// skipped, saying so, where it is missing).
    public static let hasSafetensors: Bool = {
        (try? RegulaTestSupport.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import safetensors.numpy"]))?.status == 0
    }()

    /// Runs `script` with `arguments` (`sys.argv[1...]`).
    public static func run(_ script: String, _ arguments: [String] = []) throws -> ProcessOutput {
        try RegulaTestSupport.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script] + arguments)
    }
}
