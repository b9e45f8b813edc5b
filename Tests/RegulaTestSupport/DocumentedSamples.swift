import Foundation

/// A fenced code block of a Markdown file: its info string's words and its text.
public struct FencedBlock: Sendable {
    /// The words after the opening fence (`swift`, `text output`, `swift file=Package.swift`).
    public let info: [String]
    /// The lines between the fences, joined by newlines, without a final newline.
    public let body: String
    /// The line number of the opening fence, counted from 1.
    public let line: Int

    /// The value of a `key=value` word of the info string.
    public func attribute(_ key: String) -> String? {
        info.first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// Every fenced block of `markdown`, in order. Fences are three backticks at the start of a line.
    public static func blocks(in markdown: String) -> [FencedBlock] {
        var blocks: [FencedBlock] = []
        var open: (info: [String], line: Int)?
        var lines: [String] = []
        for (index, line) in markdown.components(separatedBy: "\n").enumerated() {
            if line.hasPrefix("```") {
                if let current = open {
                    blocks.append(FencedBlock(info: current.info, body: lines.joined(separator: "\n"), line: current.line))
                    open = nil
                } else {
                    open = (line.dropFirst(3).split(separator: " ").map(String.init), index + 1)
                    lines = []
                }
            } else if open != nil {
                lines.append(line)
            }
        }
        return blocks
    }
}

/// The Swift samples of the documentation a user reads: README.md, every Markdown file under Docs/, and the
/// DocC catalog's articles. A file added to any of these places is picked up without changing the tests.
///
/// A block fenced as ```` ```swift ```` is one of three things:
/// - a file of a tutorial, when its info string has `file=PATH` (Docs/WritingARule.md); the tutorial's own
///   test writes and builds it in order with the tutorial's shell steps;
/// - a package manifest, when it starts with `// swift-tools-version`;
/// - otherwise a complete program (`main.swift`) that must build against Regula and run to exit status 0.
///   When the next block is fenced as ```` ```text output ````, the program's standard output must
///   contain that text.
public enum DocumentedSamples {
    /// A program shown in the documentation.
    public struct Program: Sendable, CustomStringConvertible {
        /// The document's path inside the package (`README.md`).
        public let document: String
        /// The line of its opening fence.
        public let line: Int
        /// Its source, as written.
        public let source: String
        /// The text its standard output must contain, when the document shows it.
        public let expectedOutput: String?

        /// A name for its executable target, unique in the package: `README_md_90`.
        public var targetName: String {
            let base = document.map { $0.isLetter || $0.isNumber ? $0 : "_" }
            return String(base) + "_\(line)"
        }

        /// `README.md:90`.
        public var description: String { "\(document):\(line)" }
    }

    /// A package manifest shown in the documentation.
    public struct Manifest: Sendable, CustomStringConvertible {
        /// The document's path inside the package.
        public let document: String
        /// The line of its opening fence.
        public let line: Int
        /// Its source, as written.
        public let source: String

        /// `README.md:90`.
        public var description: String { "\(document):\(line)" }
    }

    /// The documents searched, as paths inside the package: README.md, Docs/**/*.md, Sources/*/*.docc/**/*.md.
    public static func documents(in root: URL = TestPaths.packageRoot) -> [String] {
        var found = ["README.md"]
        let manager = FileManager.default
        for folder in ["Docs", "Sources"] {
            guard let walker = manager.enumerator(atPath: root.appendingPathComponent(folder).path) else { continue }
            for case let path as String in walker where path.hasSuffix(".md") {
                if folder == "Sources", !path.split(separator: "/").contains(where: { $0.hasSuffix(".docc") }) { continue }
                found.append("\(folder)/\(path)")
            }
        }
        return found.sorted()
    }

    /// Every Swift block of `document` that is not a tutorial file, classified.
    public static func samples(in document: String, root: URL = TestPaths.packageRoot) throws -> (programs: [Program], manifests: [Manifest]) {
        let blocks = FencedBlock.blocks(in: try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8))
        var programs: [Program] = [], manifests: [Manifest] = []
        for (index, block) in blocks.enumerated() where block.info.first == "swift" && block.attribute("file") == nil {
            if block.body.hasPrefix("// swift-tools-version") {
                manifests.append(Manifest(document: document, line: block.line, source: block.body + "\n"))
                continue
            }
            let next = index + 1 < blocks.count ? blocks[index + 1] : nil
            programs.append(Program(document: document, line: block.line, source: block.body + "\n",
                                    expectedOutput: next?.info == ["text", "output"] ? next?.body : nil))
        }
        return (programs, manifests)
    }

    /// The programs and manifests of every document.
    public static func all(root: URL = TestPaths.packageRoot) throws -> (programs: [Program], manifests: [Manifest]) {
        var programs: [Program] = [], manifests: [Manifest] = []
        for document in documents(in: root) {
            let found = try samples(in: document, root: root)
            programs += found.programs
            manifests += found.manifests
        }
        return (programs, manifests)
    }
}
