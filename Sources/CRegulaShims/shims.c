/* SwiftPM builds a C target only from sources; the helpers themselves are static inline in the header. */
#include "regula_shims.h"
