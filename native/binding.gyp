# svhn's optional native kernels (see kernels.c): built by `npm install` through
# scripts/build-native.js, never required. No -march: each variant names its own target
# and the addon picks one at load time, so the build runs on any x86-64 host.
{
  "targets": [
    {
      "target_name": "svhn_kernels",
      "sources": ["addon.c", "kernels.c"],
      "cflags": ["-O2", "-std=c11", "-ffp-contract=off"],
      "cflags!": ["-O3"],
      "xcode_settings": {"OTHER_CFLAGS": ["-O2", "-std=c11", "-ffp-contract=off"]},
    }
  ]
}
