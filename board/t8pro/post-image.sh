#!/usr/bin/env bash
# T8 Pro: disk.img, the installed disk (board/t8pro/genimage.cfg), from
# Buildroot's images: bzImage, rootfs.squashfs and GRUB's EFI image
# (efi-part/EFI/BOOT/bootx64.efi). A Buildroot post-image script
# (buildroot/configs/portal_t8pro_defconfig); it runs from the Buildroot
# tree with BINARIES_DIR etc. in its environment.
#
# The ESP holds, like firmware/build's, one kernel per slot
# (/portal-a/vmlinuz, /portal-b/vmlinuz) and boots slot A by default, but
# with GRUB: Buildroot's systemd-boot comes only with its systemd package
# (BR2_INIT_SYSTEMD, glibc), and Portal is PID 1 here on musl. There is no
# boot initramfs either: this kernel has the disk drivers and squashfs
# built in (kernel.config) and mounts root=PARTLABEL=portal-root-X itself,
# then runs init=/sbin/portal. To boot slot B, set default="portal-b" in
# EFI/BOOT/grub.cfg.
set -euo pipefail

BOARD_DIR=$(dirname "$0")
# As firmware/build's board.env for the T8 Pro, with the screen as the
# console (the last console= is /dev/console) and the serial port too.
CMDLINE="rootfstype=squashfs ro rootwait init=/sbin/portal console=ttyS0,115200 console=tty0 panic=-1 quiet loglevel=4"

efi="${BINARIES_DIR}/efi-part"
[ -f "${efi}/EFI/BOOT/bootx64.efi" ] || {
    echo "post-image: no ${efi}/EFI/BOOT/bootx64.efi (BR2_TARGET_GRUB2_X86_64_EFI)" >&2
    exit 1
}
for slot in a b; do
    install -D -m 0644 "${BINARIES_DIR}/bzImage" "${efi}/portal-${slot}/vmlinuz"
done
cat >"${efi}/EFI/BOOT/grub.cfg" <<CFG
set default="portal-a"
set timeout="0"

menuentry "Portal (slot A)" --id portal-a {
	linux /portal-a/vmlinuz root=PARTLABEL=portal-root-a ${CMDLINE}
}

menuentry "Portal (slot B)" --id portal-b {
	linux /portal-b/vmlinuz root=PARTLABEL=portal-root-b ${CMDLINE}
}
CFG

support/scripts/genimage.sh -c "${BOARD_DIR}/genimage.cfg"
