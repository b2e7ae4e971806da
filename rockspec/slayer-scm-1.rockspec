-- LuaRocks package of slayer-lua: the C core is built with CMake and
-- installed next to the Lua modules.
--   luarocks --lua-version=5.1 make rockspec/slayer-scm-1.rockspec --tree <dir>
-- Options: SLAYER_CUDA=AUTO|ON|OFF (default AUTO), SLAYER_NATIVE=ON|OFF.
rockspec_format = "3.0"
package = "slayer"
version = "scm-1"
source = {
   url = "git+file:///dev/null",  -- built from a checkout with `luarocks make`
}
description = {
   summary = "SLAYER spiking neural networks for LuaJIT: C/OpenBLAS/CUDA core, Torch7-style Lua API",
   detailed = [[
slayer-lua trains spiking neural networks with SLAYER (Shrestha & Orchard,
NeurIPS 2018): SRM and Loihi neurons, spike-based losses, synaptic layers,
learnable delays, spike file I/O, datasets, learning statistics and plots.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1",
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      SLAYER_LUADIR = "$(LUADIR)",
      SLAYER_LIBDIR = "$(LIBDIR)",
      SLAYER_CUDA = "$(SLAYER_CUDA)",
      SLAYER_NATIVE = "$(SLAYER_NATIVE)",
      SLAYER_CUDA_EMU = "OFF", -- the CUDA emulator is a test tool, not part of the package
   },
}
