/*
 * Pins the layout of the version-1 contract on this platform: a change that moves a field a plugin
 * already reads fails the build here instead of breaking plugins compiled against the older header.
 * Appending a field changes only the sizes, which must then be raised together with REGULA_ABI_MINOR.
 *
 * An appended field must start at or past the struct's old size, since the host reads a field only when
 * `struct_size` covers it: where an old struct ended in padding, the new field is 8 bytes wide or 8-byte
 * aligned (regula_reduction.scope is a uint64_t for that reason). regula_rule 1.2 ends in 4 bytes of
 * padding after `scratch_count`, so its next field must start at byte 128 (1.3's `min_rank` is a uint64_t).
 */
#include "regula/regula.h"

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(offsetof(regula_plugin, abi_major) == 0, "the version is read first, at offset 0");
_Static_assert(offsetof(regula_plugin, abi_minor) == 4, "regula_plugin.abi_minor moved");
_Static_assert(offsetof(regula_plugin, toolchain) == 24, "regula_plugin.toolchain moved (ABI 1.1 appended it after the 1.0 fields)");
_Static_assert(offsetof(regula_plugin, chain_count) == 32, "regula_plugin.chain_count moved (ABI 1.2)");
_Static_assert(sizeof(regula_plugin) == 48, "regula_plugin changed size");
_Static_assert(offsetof(regula_hyperparameter, choice_count) == 56, "regula_hyperparameter.choice_count moved (ABI 1.3)");
_Static_assert(sizeof(regula_hyperparameter) == 72, "regula_hyperparameter changed size");
_Static_assert(offsetof(regula_state_slot, initial_from) == 40, "regula_state_slot.initial_from moved (ABI 1.2)");
_Static_assert(offsetof(regula_state_slot, flags) == 56, "regula_state_slot.flags moved (ABI 1.3)");
_Static_assert(offsetof(regula_state_slot, min_rank) == 60, "regula_state_slot.min_rank moved (ABI 1.3)");
_Static_assert(sizeof(regula_state_slot) == 72, "regula_state_slot changed size");
_Static_assert(offsetof(regula_rule, prepare) == 112, "regula_rule.prepare moved (ABI 1.2)");
_Static_assert(offsetof(regula_rule, min_rank) == 128, "regula_rule.min_rank moved (ABI 1.3)");
_Static_assert(sizeof(regula_rule) == 144, "regula_rule changed size");
_Static_assert(offsetof(regula_reduction, scope) == 32, "regula_reduction.scope moved (ABI 1.2)");
_Static_assert(sizeof(regula_reduction) == 40, "regula_reduction changed size");
_Static_assert(offsetof(regula_block, rank) == 112, "regula_block.rank moved (ABI 1.3)");
_Static_assert(offsetof(regula_block, shape) == 120, "regula_block.shape moved (ABI 1.3)");
_Static_assert(offsetof(regula_block, services) == 128, "regula_block.services moved (ABI 1.3)");
_Static_assert(sizeof(regula_block) == 136, "regula_block changed size");
_Static_assert(offsetof(regula_block, reductions) == 96, "regula_block.reductions moved");
_Static_assert(offsetof(regula_block, rule_data) == 88, "regula_block.rule_data moved");
_Static_assert(offsetof(regula_block, scratch) == 104, "regula_block.scratch moved (ABI 1.2)");
_Static_assert(sizeof(regula_chain) == 56, "regula_chain changed size");
_Static_assert(sizeof(regula_chain_default) == 24, "regula_chain_default changed size");
#endif
