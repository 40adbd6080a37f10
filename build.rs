//! Bindings to hostapd's control-interface client (`wpa_ctrl.h`), made by
//! bindgen, and the client library they call:
//!
//! - with WPA_CTRL_SRC set to a hostapd / wpa_supplicant source tree (the
//!   cross builds: `apt-get source wpa`; Buildroot: the hostapd package's
//!   source dir), its `wpa_ctrl.c` and the few utils it needs are compiled
//!   here for the target;
//! - otherwise the system's `libwpa_client.a` and `/usr/include/wpa_ctrl.h`
//!   are used (Debian: libwpa-client-dev), for native glibc builds only:
//!   Debian's archive needs glibc's fortify symbols, which musl lacks.

fn main() {
    #[cfg(feature = "wifi")]
    wpa_ctrl::build();
}

#[cfg(feature = "wifi")]
mod wpa_ctrl {
    use std::env;
    use std::path::{Path, PathBuf};

    pub fn build() {
        println!("cargo:rerun-if-env-changed=WPA_CTRL_SRC");
        println!("cargo:rerun-if-changed=build.rs");
        let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
        let header = match env::var_os("WPA_CTRL_SRC") {
            Some(src) => compile_client(Path::new(&src)),
            None => {
                if target_env == "musl" {
                    panic!(
                        "WPA_CTRL_SRC is not set: a musl build compiles hostapd's wpa_ctrl.c from \
                     a hostapd/wpa source tree (scripts/cross sets it up)"
                    );
                }
                let h = PathBuf::from("/usr/include/wpa_ctrl.h");
                if !h.exists() {
                    panic!(
                        "{} is missing: apt-get install libwpa-client-dev",
                        h.display()
                    );
                }
                // Debian installs the archive in the multiarch directory.
                let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
                for dir in [format!("/usr/lib/{arch}-linux-gnu"), "/usr/lib".to_string()] {
                    if Path::new(&dir).join("libwpa_client.a").exists() {
                        println!("cargo:rustc-link-search=native={dir}");
                    }
                }
                println!("cargo:rustc-link-lib=static=wpa_client");
                h
            }
        };
        println!("cargo:rerun-if-changed={}", header.display());
        // wpa_ctrl.h uses size_t without including its header.
        let wrapper = format!("#include <stddef.h>\n#include \"{}\"\n", header.display());
        let bindings = bindgen::Builder::default()
            .header_contents("wpa_ctrl_wrapper.h", &wrapper)
            .allowlist_function("wpa_ctrl_(open|close|request|attach|detach|recv|pending|get_fd)")
            .opaque_type("wpa_ctrl")
            .layout_tests(false)
            .generate()
            .expect("bindgen on wpa_ctrl.h failed");
        let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("wpa_ctrl.rs");
        bindings
            .write_to_file(&out)
            .expect("cannot write the bindings");
    }

    /// Compiles the control-interface client from a hostapd source tree;
    /// returns its header.
    fn compile_client(src: &Path) -> PathBuf {
        let s = src.join("src");
        let files = [
            s.join("common/wpa_ctrl.c"),
            s.join("utils/os_unix.c"),
            s.join("utils/common.c"),
            s.join("utils/wpa_debug.c"),
        ];
        for f in &files {
            if !f.exists() {
                panic!("WPA_CTRL_SRC={}: no {}", src.display(), f.display());
            }
            println!("cargo:rerun-if-changed={}", f.display());
        }
        cc::Build::new()
            .files(&files)
            .include(&s)
            .include(s.join("utils"))
            .define("CONFIG_CTRL_IFACE", None)
            .define("CONFIG_CTRL_IFACE_UNIX", None)
            .warnings(false)
            .opt_level_str("s")
            .compile("wpa_client");
        s.join("common/wpa_ctrl.h")
    }
}
