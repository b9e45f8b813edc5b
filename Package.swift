// swift-tools-version:6.1
//
// Regula: an optimizer whose update rules are plugins loaded from shared objects.
//
// Layers, one folder each:
//   Sources/RegulaABI   the C contract (one public header, regula/regula.h)
//   Sources/CFFI        libffi, reached only by the host's C boundary
//   Sources/CRegulaShims  host-internal C helpers (cache prefetch, ELF symbol kinds)
//   Sources/Regula      the host: loading, registry, optimizer, execution
//   Sources/CBLAS       OpenBLAS's GEMMs behind the host services table, loaded with dlopen when first asked for
//                       (nothing is built against cblas.h or links libopenblas)
//   Sources/CMPI        Open MPI's ABI, loaded with dlopen at run time by RegulaDistributed (nothing is built
//                       against mpi.h or links libmpi: building and testing need only libffi)
//   Sources/RegulaDistributed  data-parallel and sharded steps over MPI (the core library does not use MPI)
//   Sources/RegulaCLI   the `regula` command-line tool
//   Plugins/<rule>      each built-in rule, its own shared object, loaded with dlopen at run time
//   Sources/BuildBuiltinRules  the SwiftPM build plugin that compiles the rules into Regula's resource bundle
import PackageDescription

/// The built-in rules. Each becomes `libRegulaRule<Name>.so`; the host links none of them and loads them at
/// run time. Besides these products, the BuildBuiltinRules plugin compiles every C target named
/// `RegulaRule*` or `RegulaExample*` into the `Regula` library's resource bundle, so a program in any package
/// that depends on Regula finds them beside its executable (Docs/Installing.md).
let builtinRules: [(product: String, folder: String)] = [
    ("RegulaRuleL1", "l1"),
    ("RegulaRuleL2", "l2"),
    ("RegulaRuleMomentum", "momentum"),
    ("RegulaRuleNesterov", "nesterov"),
    ("RegulaRuleSGD", "sgd"),
    ("RegulaRuleAdam", "adam"),
    ("RegulaRuleAdamW", "adamw"),
    ("RegulaRuleAdagrad", "adagrad"),
    ("RegulaRuleRMSprop", "rmsprop"),
    ("RegulaRuleAdadelta", "adadelta"),
    ("RegulaRuleAdamax", "adamax"),
    ("RegulaRuleNAdam", "nadam"),
    ("RegulaRuleRAdam", "radam"),
    ("RegulaRuleRprop", "rprop"),
    ("RegulaRuleASGD", "asgd"),
    ("RegulaRuleLion", "lion"),
    ("RegulaRuleLamb", "lamb"),
    ("RegulaRuleMuon", "muon"),
    ("RegulaRuleAdafactor", "adafactor"),
    ("RegulaRuleClipGlobalNorm", "clip_global_norm"),
    ("RegulaRuleAddDecayedWeights", "add_decayed_weights"),
]

/// Example rules, built as plugins but not loaded unless asked for (Docs/WritingARule.md).
let exampleRules: [(product: String, folder: String)] = [
    ("RegulaExampleElasticNet", "examples/elastic_net"),
    ("RegulaExampleProxL1", "examples/prox_l1"),
    ("RegulaExampleMaxNorm", "examples/max_norm"),
    ("RegulaExampleClipValue", "examples/clip_value"),
]

/// Plugins export only their entry symbol. They are built from source on the machine that runs them, so
/// their loops may use every vector instruction it has (-march=native); -ffp-contract=off keeps the
/// arithmetic exactly as written (no fused multiply-adds), the same on every machine and at every width;
/// -fno-math-errno lets sqrt compile to one instruction, so loops that take square roots (Adam) vectorize.
/// `regula config --cflags` gives plugin authors the same flags (Docs/WritingARule.md says why each is there).
let pluginCSettings: [CSetting] = [.unsafeFlags(["-fvisibility=hidden", "-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno"])]

let package = Package(
    name: "Regula",
    products: [
        .library(name: "Regula", targets: ["Regula"]),
        // The C contract alone, for plugins written in Swift (Docs/WritingARule.md).
        .library(name: "RegulaABI", targets: ["RegulaABI"]),
        // Steps over several processes started by mpirun (Docs/DISTRIBUTED.md); loads Open MPI when first asked to.
        .library(name: "RegulaDistributed", targets: ["RegulaDistributed"]),
        .executable(name: "regula", targets: ["RegulaCLI"]),
    ] + (builtinRules + exampleRules).map { .library(name: $0.product, type: .dynamic, targets: [$0.product]) },
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // File descriptors with EINTR retried (reading plugin files, writing checkpoints atomically).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // `swift package generate-documentation --target Regula` builds the DocC catalog in Sources/Regula.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(name: "RegulaABI", path: "Sources/RegulaABI"),
        .systemLibrary(name: "CFFI", path: "Sources/CFFI", pkgConfig: "libffi",
                       providers: [.apt(["libffi-dev"])]),
        // Built for this machine, like the plugins: its copy loop runs on every block.
        .target(name: "CRegulaShims", path: "Sources/CRegulaShims", cSettings: [.unsafeFlags(["-O3", "-march=native"])]),
        .target(name: "CBLAS", dependencies: ["RegulaABI"], path: "Sources/CBLAS"),
        .target(name: "Regula", dependencies: ["RegulaABI", "CFFI", "CRegulaShims", "CBLAS",
                                              .product(name: "SystemPackage", package: "swift-system")], path: "Sources/Regula",
                plugins: ["BuildBuiltinRules"]),
        .plugin(name: "BuildBuiltinRules", capability: .buildTool(), path: "Sources/BuildBuiltinRules"),
        .target(name: "CMPI", path: "Sources/CMPI"),
        .target(name: "RegulaDistributed", dependencies: ["Regula", "CMPI"], path: "Sources/RegulaDistributed"),
        .executableTarget(
            name: "RegulaCLI",
            dependencies: ["Regula", "RegulaDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/RegulaCLI",
            exclude: ["Resources/README.md"],
            resources: [.copy("Resources/breast_cancer.csv"), .copy("Resources/digits.csv")]),
        .target(name: "RegulaTestSupport", dependencies: ["Regula"], path: "Tests/RegulaTestSupport"),
        .testTarget(name: "RegulaTests", dependencies: ["Regula", "RegulaCLI", "RegulaTestSupport"], path: "Tests/RegulaTests"),
        // Launched by RegulaDistributedTests under mpirun: runs distributed steps and writes what each rank got.
        .executableTarget(name: "RegulaDistributedProbe", dependencies: ["Regula", "RegulaDistributed"],
                          path: "Tests/RegulaDistributedProbe"),
        .testTarget(name: "RegulaDistributedTests", dependencies: ["Regula", "RegulaTestSupport"],
                    path: "Tests/RegulaDistributedTests"),
    ] + (builtinRules + exampleRules).map {
        .target(name: $0.product, dependencies: ["RegulaABI"], path: "Plugins/\($0.folder)", publicHeadersPath: ".",
                cSettings: pluginCSettings)
    },
    swiftLanguageModes: [.v6]
)
