// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "app",
    dependencies: [.package(path: "../regula")],
    targets: [
        .executableTarget(name: "app", dependencies: [.product(name: "Regula", package: "regula")]),
    ]
)
