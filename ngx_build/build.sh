#!/usr/bin/env bash
# Builds the dynamic module against Debian's nginx sources (nginx-dev), with
# the packaged binary's own configure flags, so the .so loads into
# /usr/sbin/nginx. Needs build/libperpetuo_core.a (scripts/build makes it
# first); leaves ngx_build/objs/ngx_http_perpetuo_module.so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

# nginx's configure writes into its source tree, so it runs on a private copy
# of Debian's /usr/share/nginx/src with the packaged binary's own flags; that
# is what makes the .so load into /usr/sbin/nginx.
src=ngx_build/nginx-src
stamp=ngx_build/.stamp-configure
# Reconfigure when the addon script or the set of headers changes (the
# generated makefile lists them as dependencies of every glue object).
want="$(dpkg-query -W -f='${Version}' nginx-dev) $(cat config; ls module/core/*.hpp module/ngx/*.hpp | sha256sum | cut -c1-16)"
want="$(printf %s "$want" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f ngx_build/objs/Makefile ]; then
    rm -rf "$src" ngx_build/objs
    cp -r /usr/share/nginx/src "$src"
    (
        cd "$src"
        # shellcheck disable=SC1091
        . ./conf_flags
        ./configure "${NGX_CONF_FLAGS[@]}" --builddir="$root/ngx_build/objs" \
            --add-dynamic-module="$root" >"$root/ngx_build/configure.log" 2>&1 \
            || { tail -20 "$root/ngx_build/configure.log"; exit 1; }
    )
    echo "$want" >"$stamp"
fi
# nginx's makefile does not know the core archive; relink when it changed.
so=ngx_build/objs/ngx_http_perpetuo_module.so
if [ -f "$so" ] && [ build/libperpetuo_core.a -nt "$so" ]; then rm -f "$so"; fi
make -C "$src" -f "$root/ngx_build/objs/Makefile" -j "$jobs" modules >ngx_build/make.log 2>&1 \
    || { grep -E "error|Error" -A3 ngx_build/make.log | head -60; exit 1; }
echo "build: $so"
