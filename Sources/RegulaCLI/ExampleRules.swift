import Foundation
import Regula

/// The example rules built beside regula (`Plugins/examples`: `clip_value`, `elastic_net`, `max_norm`,
/// `prox_l1`). No command loads them unless asked (`--plugin-dir` their folder), except `regula train`, which
/// loads `prox_l1` for its proximal run; `regula list` names them so that what it shows and what any
/// command can be made to offer agree.
enum ExampleRules {
    /// One example rule and where it is.
    struct Example {
        /// The rule, as its file declares it.
        let rule: Rule
        /// Its shared object.
        let file: String
        /// The folder to pass to `--plugin-dir`.
        var directory: String { URL(fileURLWithPath: file).deletingLastPathComponent().path }
    }

    /// Every example rule that loads, as a probe process describes it (none is loaded here); files that do
    /// not load are left out (`regula inspect` says why).
    static func find() -> [Example] {
        let files = PluginSearchPath.exampleFiles()
        let registry = RuleRegistry(describingWith: PluginOptions.probe())
        registry.probe?.probe(files)
        return files.flatMap { file in
            ((try? registry.loadPlugin(at: file)) ?? []).map { Example(rule: $0, file: file) }
        }
    }
}
