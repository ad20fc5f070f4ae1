// SPDX-License-Identifier: Apache-2.0
// CAtomics is header-only (static inline functions); this file gives the target a translation unit.
#include "CAtomics.h"
