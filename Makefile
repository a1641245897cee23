# Thin wrapper over the scripts, for packagers: make && make install DESTDIR=...
PREFIX ?= /usr
DESTDIR ?=

.PHONY: all install check check-dracut

# The static musl binary: target/x86_64-unknown-linux-musl/release/integrity-loader
all:
	scripts/build-static

# The binary and the dracut module (scripts/install --help); builds nothing.
install:
	scripts/install DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)"

# The test suite (as root).
check:
	scripts/test

# Real initramfs builds with dracut and this module (as root).
check-dracut:
	tests/dracut_module.sh
