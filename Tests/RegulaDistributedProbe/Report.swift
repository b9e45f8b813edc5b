import Foundation

/// What one rank saw, by key ("numerics/sharded/plain/float32/w"); each rank writes its own report as JSON,
/// and RegulaDistributedTests compares them.
struct Report: Codable {
    struct Entry: Codable {
        var values: [Double]?
        var text: String?
        var number: Int?
    }

    var entries: [String: Entry] = [:]

    mutating func record(_ key: String, values: [Double]) { entries[key, default: Entry()].values = values }
    mutating func record(_ key: String, text: String) { entries[key, default: Entry()].text = text }
    mutating func record(_ key: String, number: Int) { entries[key, default: Entry()].number = number }

    func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: url)
    }
}
