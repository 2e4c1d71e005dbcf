// Shadows the CUDA header of the same name for tools/cuda_emu: everything comes from emu.h.
#pragma once
#include "emu.h"
