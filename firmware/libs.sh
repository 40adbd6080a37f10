# Sourced by firmware scripts: copies programs' shared libraries (their ELF
# NEEDED entries, recursively) and the dynamic loader from unpacked Debian
# packages into a root tree, keeping each library's path.
#
#   needed_libs PKGROOT TREE FILE...   -> sets LIBS_COPIED (count); returns 1
#                                         with MISSING_LIBS set if some soname
#                                         is in no unpacked package
needed_libs() {
    local pkgroot=$1 tree=$2; shift 2
    local libdirs todo=("$@") seen=" " f n d rel found interp
    libdirs=$(find "$pkgroot" -type d \( -path '*/lib' -o -path '*/lib/*-linux-gnu*' -o -path '*/usr/lib/*-linux-gnu*' \) | sort -u)
    MISSING_LIBS="" LIBS_COPIED=0
    while [ ${#todo[@]} -gt 0 ]; do
        f=${todo[0]}; todo=("${todo[@]:1}")
        for n in $(readelf -d "$f" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print $5}'); do
            case "$seen" in *" $n "*) continue ;; esac
            seen="$seen$n "
            found=
            for d in $libdirs; do
                if [ -e "$d/$n" ]; then
                    rel=${d#"$pkgroot"}
                    mkdir -p "$tree$rel"
                    cp -L "$d/$n" "$tree$rel/$n"
                    todo+=("$tree$rel/$n")
                    LIBS_COPIED=$((LIBS_COPIED + 1))
                    found=1
                    break
                fi
            done
            [ -n "$found" ] || MISSING_LIBS="$MISSING_LIBS $n"
        done
    done
    interp=$(readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
    if [ -n "$interp" ]; then
        mkdir -p "$tree$(dirname "$interp")"
        found=$(find "$pkgroot" -name "$(basename "$interp")" | head -1)
        [ -n "$found" ] && cp -L "$found" "$tree$interp" || MISSING_LIBS="$MISSING_LIBS $interp"
    fi
    [ -z "$MISSING_LIBS" ]
}
