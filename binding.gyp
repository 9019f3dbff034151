{
  "targets": [
    {
      # Linux-only addon: TUN, recvmmsg/sendmmsg, uv_poll and checksums.
      "target_name": "sluice",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/errors.cc",
        "native/checksum.cc",
        "native/tun.cc",
        "native/udp.cc",
        "native/tun-vnet.cc",
        "native/udp-gso.cc",
        "native/tcp-gso.cc",
        "native/tcp-gro.cc",
        "native/sched.cc",
        "native/memory.cc",
        "native/fastpath.cc",
        "native/datapath.cc",
        "native/poller.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      # Errors are raised as pending JS exceptions and checked explicitly, so
      # C++ exceptions stay off (node's default -fno-exceptions is kept).
      # SWALLOW_UNTHROWABLE: an error raised while a worker shuts down is
      # dropped instead of aborting the process.
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
                  "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++1y", "-O3"],
      "cflags!": ["-O3"],
      "cflags_cc": ["-std=c++17", "-O2"]
    }
  ]
}
