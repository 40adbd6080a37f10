################################################################################
#
# portal
#
################################################################################

# The source is the repository this br2-external tree lives in, at the
# commit checked out there, fetched with Buildroot's git backend. The
# download step thus makes a reproducible tarball of that commit and, for
# the cargo build, vendors the crates into it (cargo-post-process): the
# build is offline (cargo --offline --locked) and `make source` or
# `make legal-info` keep everything. The commit id is the version, so a
# new commit is a new tarball; uncommitted changes are not built (for
# those, set PORTAL_OVERRIDE_SRCDIR in local.mk: see the hook below).
# With the version being the commit, a .hash file would only restate it:
# there is none, and the download check warns but passes.
PORTAL_VERSION := $(shell git -C $(BR2_EXTERNAL_PORTAL_PATH)/.. rev-parse HEAD 2>/dev/null)
PORTAL_SITE = $(BR2_EXTERNAL_PORTAL_PATH)/..
PORTAL_SITE_METHOD = git
PORTAL_LICENSE = GPL-2.0-or-later
# Build output of a developer's tree, never part of the source.
PORTAL_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude /target --exclude /fuzz/target

ifeq ($(BR_BUILDING):$(BR2_PACKAGE_PORTAL):$(PORTAL_VERSION)$(PORTAL_OVERRIDE_SRCDIR),y:y:)
$(error portal: $(BR2_EXTERNAL_PORTAL_PATH)/.. is not a git checkout; set PORTAL_OVERRIDE_SRCDIR in local.mk to build a plain source tree)
endif

ifeq ($(BR2_PACKAGE_PORTAL_HOST_CROSS),y)

# mipsel (EdgeRouter X): Buildroot has no Rust for this target (Rust's
# mips*-musl targets are tier 3: no prebuilt std), so the project's own
# script builds the binary: rustup's stable toolchain with std built
# from source, its own soft-float musl and libunwind (built once from
# Debian sources and cached in PORTAL_CROSS_CACHE, by default the
# repository's target/cross, as when the script runs there), without
# the wifi feature (the ER-X has no radio). It needs the host's rustup
# and network access; see buildroot/README.md. The result is static and
# does not use Buildroot's toolchain.
PORTAL_CROSS_CACHE ?= $(BR2_EXTERNAL_PORTAL_PATH)/../target/cross
PORTAL_BIN = $(@D)/target/mipsel-unknown-linux-musl/release/portal

define PORTAL_BUILD_CMDS
	mkdir -p $(PORTAL_CROSS_CACHE) $(@D)/target
	ln -sfn $(PORTAL_CROSS_CACHE) $(@D)/target/cross
	cd $(@D) && ./scripts/cross mipsel
endef

else # BR2_PACKAGE_PORTAL_HOST_CROSS

PORTAL_CARGO_BUILD_OPTS = --bin portal
PORTAL_BIN = $(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/portal

ifeq ($(BR2_PACKAGE_PORTAL_WIFI),y)
# build.rs compiles hostapd's control-interface client (wpa_ctrl.c and
# the utils it needs) from the hostapd package's source tree with the
# target compiler, and bindgen (runtime-loaded libclang) reads
# wpa_ctrl.h; it passes --target from cargo's TARGET itself.
PORTAL_DEPENDENCIES += hostapd host-clang
PORTAL_CARGO_ENV += \
	WPA_CTRL_SRC=$(HOSTAPD_DIR) \
	LIBCLANG_PATH=$(HOST_DIR)/lib \
	BINDGEN_EXTRA_CLANG_ARGS="--sysroot=$(STAGING_DIR)"
else
PORTAL_CARGO_BUILD_OPTS += --no-default-features
endif

# The download step vendors the crates (support/download/cargo-post-process);
# a source overridden with PORTAL_OVERRIDE_SRCDIR is rsynced instead and
# never goes through it, so vendor that copy here, once, before the
# offline build (host-rustc is ready by the configure step).
define PORTAL_VENDOR_OVERRIDDEN_SOURCE
	if [ ! -f $(@D)/.cargo/config.toml ]; then \
		cd $(@D) && mkdir -p .cargo && \
		$(TARGET_MAKE_ENV) $(PKG_COMMON_CARGO_ENV) \
			cargo vendor --locked VENDOR > .cargo/config.tmp && \
		mv .cargo/config.tmp .cargo/config.toml; \
	fi
endef
PORTAL_PRE_CONFIGURE_HOOKS += PORTAL_VENDOR_OVERRIDDEN_SOURCE

endif # BR2_PACKAGE_PORTAL_HOST_CROSS

# PID 1, as firmware/build installs it: the binary is /init (what the
# kernel runs from an initramfs) and /sbin/portal (init= on a disk root,
# and what init.json's services run).
define PORTAL_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(PORTAL_BIN) $(TARGET_DIR)/init
	mkdir -p $(TARGET_DIR)/sbin
	ln -sf /init $(TARGET_DIR)/sbin/portal
endef

ifeq ($(BR2_PACKAGE_PORTAL_HOST_CROSS),y)
$(eval $(generic-package))
else
$(eval $(cargo-package))
endif
