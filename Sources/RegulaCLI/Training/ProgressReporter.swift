import Foundation

/// Shows training progress: a bar redrawn in place on a terminal, a plain line every tenth of the way
/// otherwise (so logs stay readable).
final class ProgressReporter {
    private let total: Int
    private let title: String
    private let interactive = isatty(STDERR_FILENO) != 0
    private var lastTenth = -1

    init(title: String, total: Int) {
        self.title = title
        self.total = max(total, 1)
    }

    func update(_ done: Int) {
        let fraction = Double(done) / Double(total)
        if interactive {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\(title) [\(bar)] \(done)/\(total)".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let tenth = Int(fraction * 10)
            if tenth > lastTenth {
                lastTenth = tenth
                FileHandle.standardError.write(Data("\(title): \(done)/\(total) epochs\n".utf8))
            }
        }
    }
}
