/// C sources of small test plugins, compiled by the tests with ``PluginCompiler``.
public enum PluginSource {
    /// The good plugin every folder also holds: rule `scale_test`, no hyperparameters.
    public static let scaleTest = plugin(rules: [#"{ RULE("scale_test"), .kernel = scale }"#])

    /// C source of a plugin whose `rules` array holds `rules`, each an initializer that may use `RULE(name)`
    /// (struct size, name, version and both dtypes) and the kernel `scale` (d *= 2).
    public static func plugin(rules: [String], declarations: String = "",
                        export: String = "REGULA_EXPORT_PLUGIN(rules)") -> String {
        """
        #include <regula/regula.h>
        #define RULE(NAME) .struct_size = sizeof(regula_rule), .name = NAME, .version = 1, \\
                           .dtypes = REGULA_DTYPE_FLOAT32 | REGULA_DTYPE_FLOAT64
        __attribute__((unused)) REGULA_KERNEL(scale, {
            T *d = (T *)block->update;
            for (size_t i = 0; i < block->length; i++) d[i] *= (T)2;
        })
        \(declarations)
        static const regula_rule rules[] = { \(rules.joined(separator: ",\n    ")) };
        \(export)

        """
    }
}
