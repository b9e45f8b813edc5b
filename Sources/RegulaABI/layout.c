/*
 * Pins the layout of the version-1 contract on this platform: a change that moves a field a plugin
 * already reads fails the build here instead of breaking plugins compiled against the older header.
 * Appending a field changes only the sizes, which must then be raised together with REGULA_ABI_MINOR.
 */
#include "regula/regula.h"

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(offsetof(regula_plugin, abi_major) == 0, "the version is read first, at offset 0");
_Static_assert(offsetof(regula_plugin, abi_minor) == 4, "regula_plugin.abi_minor moved");
_Static_assert(sizeof(regula_plugin) == 32, "regula_plugin changed size");
_Static_assert(offsetof(regula_plugin, toolchain) == 24, "regula_plugin.toolchain moved (ABI 1.1 appended it after the 1.0 fields)");
_Static_assert(sizeof(regula_hyperparameter) == 56, "regula_hyperparameter changed size");
_Static_assert(sizeof(regula_state_slot) == 40, "regula_state_slot changed size");
_Static_assert(sizeof(regula_rule) == 112, "regula_rule changed size");
_Static_assert(sizeof(regula_reduction) == 32, "regula_reduction changed size");
_Static_assert(sizeof(regula_block) == 104, "regula_block changed size");
_Static_assert(offsetof(regula_block, reductions) == 96, "regula_block.reductions moved");
_Static_assert(offsetof(regula_block, rule_data) == 88, "regula_block.rule_data moved");
#endif
