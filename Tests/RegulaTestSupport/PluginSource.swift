/// C sources of small test plugins, compiled by the tests with ``PluginCompiler``.
public enum PluginSource {
    /// The good plugin every folder also holds: rule `scale_test`, no hyperparameters.
    public static let scaleTest = plugin(rules: [#"{ RULE("scale_test"), .kernel = scale }"#])

    /// A rank-2 whole-tensor rule (`REGULA_RULE_WHOLE_TENSOR`, ABI 1.3): `row_center` subtracts each row's mean
    /// from `d` (a matrix's rows are `shape[1]` long) and keeps the Frobenius norm of the centred `d` in its
    /// scalar slot `norm`; it fails with "not handed the whole matrix" when given less, and with "seven rows are
    /// refused" on a matrix of 7 rows, so that a test can make one parameter of a step fail.
    public static let rowCenter = plugin(rules: [#"""
        { RULE("row_center"), .summary = "subtracts each row's mean from d",
          .flags = REGULA_RULE_WHOLE_TENSOR | REGULA_RULE_USES_ABI_1_3 | REGULA_RULE_UPDATE_ONLY,
          .min_rank = 2, .max_rank = 2, .kernel = center, REGULA_SLOTS(norm_slot) }
        """#], declarations: """
        static const regula_state_slot norm_slot[] = {
            { .struct_size = sizeof(regula_state_slot), .name = "norm", .shape = REGULA_SLOT_SCALAR },
        };
        REGULA_KERNEL(center, {
            if (block->offset != 0 || block->length != block->parameter_length || block->rank != 2)
                return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "not handed the whole matrix");
            size_t rows = block->shape[0], columns = block->shape[1];
            if (rows == 7) return regula_message_set(message, REGULA_ERROR_INVALID_ARGUMENT, "seven rows are refused");
            T *d = (T *)block->update;
            double squares = 0;
            for (size_t r = 0; r < rows; r++) {
                T sum = 0;
                for (size_t c = 0; c < columns; c++) sum += d[r * columns + c];
                T mean = sum / (T)columns;
                for (size_t c = 0; c < columns; c++) {
                    d[r * columns + c] -= mean;
                    squares += (double)d[r * columns + c] * (double)d[r * columns + c];
                }
            }
            block->scalar_slots[0] = sqrt(squares);
        })
        """)

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
