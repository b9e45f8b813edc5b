/// A command's refusal, in words: what was wrong and what to do. Printed as `error: <words>` (exit status 1).
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
