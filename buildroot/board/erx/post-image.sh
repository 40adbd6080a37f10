#!/usr/bin/env bash
# EdgeRouter X: the legacy uImage the stock U-Boot boots from a 3 MiB
# kernel slot (board/erx/layout.md), then the factory image flash/erx
# makes of it.
#
# Buildroot has built vmlinux.bin with the root file system built in as
# its initramfs (BR2_TARGET_ROOTFS_INITRAMFS) and edgerouter-x.dtb. The
# stock U-Boot passes no device tree, so it is appended to the raw kernel
# (CONFIG_MIPS_RAW_APPENDED_DTB); Buildroot's "uImage with appended DT"
# is ARM-only (linux/Config.in), hence this script. The whole is LZMA
# compressed and wrapped for U-Boot: loaded at 0x80001000 (the MT7621
# load address, arch/mips/ralink/Platform), entered at kernel_entry (the
# ELF entry point of vmlinux).
set -euo pipefail

SLOT=3145728 # bytes in a kernel slot (0x300000)
LOAD=0x80001000

version=$(sed -n 's/^BR2_LINUX_KERNEL_VERSION="\(.*\)"$/\1/p' "${BR2_CONFIG}")
vmlinux="${BUILD_DIR}/linux-${version}/vmlinux"
entry=$(LC_ALL=C readelf -h "${vmlinux}" | sed -n 's/^ *Entry point address: *//p')
[ -n "${entry}" ] || { echo "post-image: no entry point in ${vmlinux}" >&2; exit 1; }

work=$(mktemp -d "${BUILD_DIR}/erx-uimage.XXXXXX")
trap 'rm -rf "${work}"' EXIT
cat "${BINARIES_DIR}/vmlinux.bin" "${BINARIES_DIR}/edgerouter-x.dtb" >"${work}/kernel.bin"
"${HOST_DIR}/bin/lzma" -9 -c "${work}/kernel.bin" >"${work}/kernel.bin.lzma"
"${HOST_DIR}/bin/mkimage" -A mips -O linux -T kernel -C lzma \
    -a "${LOAD}" -e "${entry}" -n "Portal erx ${version}" \
    -d "${work}/kernel.bin.lzma" "${BINARIES_DIR}/uImage"

size=$(stat -c %s "${BINARIES_DIR}/uImage")
echo "post-image: uImage ${size} bytes of ${SLOT} in a kernel slot, entry ${entry}"
if [ "${size}" -gt "${SLOT}" ]; then
    echo "post-image: uImage does not fit the 3 MiB kernel slot" >&2
    exit 1
fi

"${BR2_EXTERNAL_PORTAL_PATH}/../flash/erx" build --kernel "${BINARIES_DIR}/uImage" \
    --out "${BINARIES_DIR}/portal-erx-factory.tar"
