import Foundation

/// A classification data set: standardized features (zero mean, unit variance per column) and labels 0, 1, ….
struct Dataset {
    let name: String
    /// Row-major, `rows × features`.
    let features: [Double]
    let labels: [Double]
    let rows: Int
    let columns: Int

    /// The embedded breast-cancer data (Resources/breast_cancer.csv).
    static func breastCancer() throws -> Dataset {
        try load(try embeddedFile("breast_cancer.csv"), name: "breast cancer (569 × 30, embedded)")
    }

    /// The embedded digits data (Resources/digits.csv): 8 × 8 images, labels 0 to 9.
    static func digits() throws -> Dataset {
        try load(try embeddedFile("digits.csv"), name: "digits (1797 × 64, embedded)", classes: 10)
    }

    /// The files embedded in regula, which `regula install` copies beside it.
    static let embeddedNames = ["breast_cancer.csv", "digits.csv"]

    /// Where embedded data may be: in the resource bundle SwiftPM puts beside `regula`, or in
    /// `../share/regula` (the layout of `regula install`). `Bundle.module` is not used: it stops the process
    /// when its bundle is missing.
    static func embeddedPlaces(_ name: String) -> [URL] {
        let folder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        return [folder.appendingPathComponent("Regula_RegulaCLI.resources/" + name),
                folder.deletingLastPathComponent().appendingPathComponent("share/regula/" + name)]
    }

    /// The first of ``embeddedPlaces(_:)`` that exists, or a refusal naming where it was looked for.
    static func embeddedFile(_ name: String) throws -> URL {
        guard let url = embeddedPlaces(name).first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw CommandError("the embedded \(name) is missing: it is looked for in "
                                    + embeddedPlaces(name).map(\.path).joined(separator: " and ")
                                    + "; build regula with SwiftPM or install it with `regula install`")
        }
        return url
    }

    /// Reads a CSV of numbers whose last column is a label, 0 to `classes` − 1. A first line that is not all numbers, or that
    /// has another column count (like the breast-cancer file's `569,30,malignant,benign`), is a header.
    static func load(_ url: URL, name: String? = nil, classes: Int = 2) throws -> Dataset {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw CommandError("cannot read \(url.path)")
        }
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard lines.count >= 2 else { throw CommandError("\(url.path) has no data rows") }
        let width = lines[1].count
        if lines[0].count != width || lines[0].contains(where: { Double($0.trimmingCharacters(in: .whitespaces)) == nil }) {
            lines.removeFirst()
        }
        guard width >= 2 else { throw CommandError("\(url.path): rows need at least one feature and a label") }
        var features: [Double] = [], labels: [Double] = []
        for (index, fields) in lines.enumerated() {
            guard fields.count == width else {
                throw CommandError("\(url.path), data row \(index + 1): \(fields.count) columns; the first row has \(width)")
            }
            let numbers = fields.map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard numbers.allSatisfy({ $0 != nil && $0!.isFinite }) else {
                throw CommandError("\(url.path), data row \(index + 1): not all columns are numbers")
            }
            guard let label = numbers.last!, label >= 0, label < Double(classes), label.rounded() == label else {
                throw CommandError("\(url.path), data row \(index + 1): the label (last column) is \(numbers.last!!); allowed: "
                                       + (classes == 2 ? "0 or 1" : "a whole number from 0 to \(classes - 1)"))
            }
            features += numbers.dropLast().map { $0! }
            labels.append(numbers.last!!)
        }
        return Dataset(name: name ?? url.lastPathComponent, standardizing: features, labels: labels, columns: width - 1)
    }

    init(name: String, standardizing raw: [Double], labels: [Double], columns: Int) {
        let rows = labels.count
        var features = raw
        for column in 0..<columns {
            let values = stride(from: column, to: raw.count, by: columns).map { raw[$0] }
            let mean = values.reduce(0, +) / Double(rows)
            let deviation = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(rows)).squareRoot()
            for row in 0..<rows { features[row * columns + column] = deviation > 0 ? (raw[row * columns + column] - mean) / deviation : 0 }
        }
        self.name = name
        self.features = features
        self.labels = labels
        self.rows = rows
        self.columns = columns
    }
}
