import Foundation
import Regula

do {
    // A parameter owns a copy of its values, or wraps memory you keep alive and updates it in place.
    let w = Parameter("w", values: [Float](repeating: 0.5, count: 4))
    let b = Parameter("b", values: [Float]([0.1, -0.1]))
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3)
    let gradientBuffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 3)
    defer { buffer.deallocate(); gradientBuffer.deallocate() }
    buffer.initialize(repeating: 1)
    gradientBuffer.initialize(repeating: 0.25)
    let v = try Parameter("v", wrapping: buffer, gradient: UnsafeBufferPointer(gradientBuffer))

    // Group 0 has its own learning rate; group 1 takes the defaults.
    let optimizer = try Optimizer(
        [ParamGroup([w, b], options: ["lr": 1e-2]), ParamGroup([v])],
        rules: ["l1", "l2", "momentum", "sgd"],
        defaults: ["lr": 0.1, "momentum": 0.9, "weight_decay1": 5e-4])

    for _ in 0..<3 {
        try w.setGradient([Float]([0.1, -0.2, 0.3, -0.4]))
        try b.setGradient([Float]([0.2, -0.2]))
        try optimizer.step()                     // v's gradient is read from gradientBuffer in place
    }
    optimizer.groups[0].learningRate? *= 0.9     // checked, and used, at the next step
    optimizer.groups[1].options["lr"] = 0.05

    print(try w.values(as: Float.self))
    print(Array(buffer))
    print(optimizer.state(of: w)?.slots["momentum_buffer"] ?? [])
} catch {
    // Every Regula error is a sentence that names what was wrong and what is allowed:
    // report it and exit with a failure status, as a command-line tool does.
    FileHandle.standardError.write(Data("app: \(error)\n".utf8))
    exit(1)
}
