#!/usr/bin/env bash
# Debian packages the project needs beyond Python wheels, installed when missing.
#
#   fonts-wqy-microhei  a CJK font: draws the development seal's characters, and lets
#                       PDF renderers substitute reportlab's STSong-Light on machines
#                       without Chinese fonts (tests render sealed pages to pixels).
#
# Idempotent and quiet when everything is present; needs root (or sudo) otherwise.
set -euo pipefail

packages=()
if ! fc-list :lang=zh family 2>/dev/null | grep -q .; then
    packages+=(fonts-wqy-microhei)
fi
command -v fc-list >/dev/null || packages+=(fontconfig)

if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "system_deps: install a CJK font (e.g. WenQuanYi Micro Hei) and fontconfig" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "system_deps: installing ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; then
    # A fresh machine may not have package lists yet.
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
fi
